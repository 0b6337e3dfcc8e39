#pragma once
// Loads a workflow file: runs the Lua script, turns what it declared with the
// `keel` module into engine WorkflowSpecs, and validates them.
//
// The returned LoadedScript owns the Lua state pool its node bodies run on;
// keep it alive for as long as any of its workflows may run. Loading is done
// from one thread; the loaded workflows may then run on any threads.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/clock.h"
#include "engine/quota_source.h"
#include "engine/runner.h"
#include "engine/status.h"
#include "engine/workflow.h"
#include "nodes/http_loop.h"
#include "scripts/declarations.h"

namespace keel {

struct LoadOptions {
  // Time and timers of the script's nodes (keel.sleep, LLM calls' waits);
  // null means SystemClock().
  Clock* clock = nullptr;
  // The loop the script's HTTP requests go through; null: a loop of its own
  // on `clock`. Pass one to share it, e.g. with its clock() as `clock`.
  std::shared_ptr<HttpLoop> http;
  // Allocation cap per Lua state in bytes; a script over it fails its node.
  size_t memory_limit = 256u << 20;
  // Points providers elsewhere (`--provider NAME=URL`): base_url by provider
  // name; a `mock` provider given a URL speaks the OpenAI protocol to it.
  // Environment variables KEEL_PROVIDER_<NAME> (the name upper-cased, other
  // characters as '_') do the same, below these.
  std::map<std::string, std::string> provider_urls;
  // Where the providers' rpm and tpm are shared with other processes (the
  // database's buckets, engine/store_quota_source.h); null: per process.
  std::shared_ptr<QuotaSource> quotas;
};

struct LoadedScript {
  ScriptInfo info;                      // absolute path, sha256 and text of the file
  std::vector<WorkflowSpec> workflows;  // every workflow the file declares, in order
  int main = -1;                        // index of the workflow the file returns
  std::shared_ptr<void> runtime;        // the Lua state pool the node bodies use
  Clock* clock = nullptr;               // LoadOptions::clock, or SystemClock()
  // Parallel to `workflows`: what each declared beyond the engine model, i.e.
  // its `defaults` and each node's policy options (timeout, retry, ...) as JSON.
  std::vector<WorkflowDeclaration> declarations;
  // The keel.provider declarations as calls use them (base_url overrides and
  // ca_file resolved), in declaration order; `keel doctor` checks them.
  std::vector<ProviderConfig> providers;
  // keel.schedule declarations, with their effective params.
  std::vector<ScheduleDeclaration> schedules;

  const WorkflowSpec& main_workflow() const { return workflows[main]; }
  // The declared workflow called `name`, or null.
  const WorkflowSpec* Find(const std::string& name) const;
};

// The largest script LoadWorkflowFile reads.
inline constexpr size_t kMaxScriptBytes = 16u << 20;

// Loads and validates `path`, which must be a regular file of at most
// kMaxScriptBytes. On any problem returns kPermanent with a message
// of one or more lines, each naming file:line and, where there is one, the
// node: syntax and runtime errors of the script, DSL misuse (unknown option,
// did-you-mean), and every Validate() diagnostic of every workflow.
Result<std::shared_ptr<LoadedScript>> LoadWorkflowFile(const std::string& path,
                                                       const LoadOptions& options);

}  // namespace keel
