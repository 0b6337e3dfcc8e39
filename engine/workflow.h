#pragma once
// The workflow model: what a script declares, independent of Lua.
//
// scripts/ builds these from a .lua file; the executor runs them. A
// WorkflowSpec is immutable once built and may be read from any thread.
// Node bodies are the seam through which node kinds (Lua functions, LLM
// agents, ...) plug into the engine.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/cancel_token.h"
#include "engine/json_text.h"
#include "engine/node_policy.h"
#include "engine/node_status.h"
#include "engine/status.h"
#include "engine/usage.h"

namespace keel {

struct WaitSpec;  // engine/wait_node.h
struct NodeResult;

// What one attempt of a node receives. The executor keeps it alive, unchanged,
// until the attempt's completion has been called.
struct NodeContext {
  std::string run_id;
  std::string workflow;
  std::string node;
  // "" for the run's own nodes; "parent>fallback_workflow/" for the nodes of
  // a fallback workflow, so their keys do not collide with the run's.
  std::string scope;
  int attempt = 1;
  JsonText params;  // a JSON object
  // Outputs of the dependencies that succeeded (or were restored), in `after` order.
  std::vector<std::pair<std::string, JsonText>> deps;
  std::vector<std::string> skipped;  // dependencies whose `when` said no
  std::vector<std::string> failed;   // optional dependencies that failed
  // In a fallback workflow: why the node it runs for failed, an object
  // { node, kind, message, attempts }; null elsewhere.
  JsonText failure;
  CancelToken* cancel = nullptr;
  // Monotonic Clock::Now() time at which the attempt times out; 0: none. A
  // body that EnforcesDeadline() stops itself by then with a kTimeout error.
  double deadline = 0;
  // Runs a closure (which must not throw) on a worker of the run's task arena. A body that waited
  // (timer, I/O) uses it to continue its work off the timer or I/O thread.
  std::function<void(std::function<void()>)> post;

  // The following are set by the executor; callable from any thread until
  // the attempt's completion has been called.
  // Appends an event of `kind` (data: a JSON object) to the node's history.
  std::function<void(std::string kind, std::string data)> record;
  // Reports one LLM call: stored as a kUsageEventKind event whose `data` (a
  // JSON object that should carry `usage` in the fields engine/usage.h
  // names) the body builds, and added to the run's spending. Returns false
  // when the run's budget is now exceeded: the run is being stopped and
  // this attempt's token is cancelled.
  std::function<bool(const Usage& usage, std::string data)> spend;
  // Checkpoints one step of progress within the node (a JSON object): stored
  // as a "checkpoint" event and handed to later attempts of the node — in
  // this process or after a resume — in `journal`.
  std::function<void(JsonText step)> checkpoint;
  // What earlier attempts of this node checkpointed, oldest first.
  std::vector<JsonText> journal;
  // Set for wait nodes (NodeSpec::wait): takes the node's signal or waits for
  // its timer, parking the run when it must wait (engine/wait_node.h). `done`
  // as for NodeBody::Start.
  std::function<void(std::function<void(NodeResult)> done)> wait;

  // A keel.map item's element of the list and its 1-based position; null
  // and 0 outside a map item.
  JsonText item;
  int index = 0;

  // Stable across attempts and resumes: lets a body dedupe its side effects.
  std::string IdempotencyKey() const { return run_id + "/" + scope + node; }
};

// How one attempt ended. `output` is set when status is kSucceeded or
// kFallback; `error` is set (not ok) when status is kFailed or kCancelled.
struct NodeResult {
  NodeStatus status = NodeStatus::kFailed;
  JsonText output;
  Status error;

  static NodeResult Success(JsonText output) {
    return NodeResult{NodeStatus::kSucceeded, std::move(output), Status::Ok()};
  }
  static NodeResult Skipped() { return NodeResult{NodeStatus::kSkipped, nullptr, Status::Ok()}; }
  static NodeResult Failure(Status error) {
    return NodeResult{NodeStatus::kFailed, nullptr, std::move(error)};
  }
};

using NodeCompletion = std::function<void(NodeResult)>;

// The work of one node kind. Implementations are shared by all runs of a
// workflow and must be safe to Start concurrently from several threads.
class NodeBody {
 public:
  virtual ~NodeBody() = default;
  // Starts one attempt (including its `when` predicate, if any). Called on a
  // TBB worker; must never block or sleep. Calls `done` exactly once, from any
  // thread, possibly before Start returns. Must not throw.
  virtual void Start(const NodeContext& ctx, NodeCompletion done) = 0;

  // True when the body stops itself at ctx.deadline (Lua checks it in its
  // instruction hook and bounds its waits by it), so the executor needs no
  // timer per attempt; false makes the executor cancel the attempt's token
  // from a timer at the deadline.
  virtual bool EnforcesDeadline() const { return false; }
};

struct DynamicNode;  // engine/dynamic_node.h: keel.map, keel.call, keel.loop

struct NodeSpec {
  std::string name;
  std::string kind = "fn";           // for display: "fn", "agent", ...
  std::vector<std::string> after;    // dependency names
  bool optional = false;             // failure degrades the run instead of failing it
  bool has_when = false;             // for display; the body evaluates it
  std::string where;                 // "file.lua:12", for error messages
  std::shared_ptr<NodeBody> body;    // null means the node has nothing to run
  NodePolicy policy;
  std::shared_ptr<const WaitSpec> wait;  // set for wait nodes (keel.wait)
  // Set for map, call and loop nodes, which run items or a sub-workflow
  // instead of a body (engine/dynamic_node.h).
  std::shared_ptr<const DynamicNode> dynamic;
};

struct WorkflowSpec {
  std::string name;
  std::string where;                 // "file.lua:3"
  JsonText params = MakeJson("{}");  // defaults, a JSON object
  std::vector<NodeSpec> nodes;
  int retry_budget = -1;             // retries allowed across a run; -1: unlimited
  Budget budget;                     // tokens and cost the run may spend
  // The workflow run once when a run of this one ends failed (`on_failure`,
  // engine/escalation.h); "" for none.
  std::string on_failure;

  // Index of the node called `name`, or -1.
  int Find(const std::string& name) const;
};

// One problem found by Validate, printed as "where: node 'name': message".
struct Diagnostic {
  std::string where;
  std::string node;
  std::string message;
  std::string ToString() const;
};

// Checks names, dependencies (unknown ones get a did-you-mean), duplicates,
// cycles (the cycle is printed), nodes without a body and join rules that
// cannot be met. Empty when valid.
std::vector<Diagnostic> Validate(const WorkflowSpec& workflow);

// How deep fallback workflows may nest (a fallback's nodes may have
// fallbacks of their own).
inline constexpr int kMaxFallbackDepth = 4;

// Checks across the workflows of one file: every fallback names a declared
// workflow, no fallback chain leads back to a workflow on it, chains are at
// most kMaxFallbackDepth deep, and each fallback workflow has an output (a
// node named "output" or a single sink).
std::vector<Diagnostic> ValidateFallbacks(const std::vector<WorkflowSpec>& workflows);

// The node whose output a workflow returns when used as a fallback: the node
// named "output", else the single sink; -1 when there is none.
int OutputNode(const WorkflowSpec& workflow);

}  // namespace keel
