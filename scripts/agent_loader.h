#pragma once
// Turns what a script declared for LLMs — keel.provider and keel.agent —
// into an LlmClient and AgentNode bodies, checking what can be checked before
// the run: the agent's provider exists, its prompt fields name a parameter
// with a default or a dependency in `after`, its hedge and output are sound.
// Used by the workflow loader on the loading thread.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/workflow.h"
#include "nodes/llm_client.h"
#include "scripts/declarations.h"
#include "scripts/lua_state_pool.h"
#include "scripts/workflow_loader.h"

namespace keel {

// Adds the declared providers to `client`, pointing them elsewhere as
// options.provider_urls and KEEL_PROVIDER_<NAME> say. A relative ca_file is
// taken from `script_dir`, and must be readable. Each problem is one line
// naming the provider's file:line.
Status AddProviders(const std::vector<ProviderConfig>& providers, const LoadOptions& options,
                    const std::string& script_dir, LlmClient* client);

// What a workflow's prompt fields may name besides its own params and a
// node's `after`: when it is used as a fallback, the params and
// dependencies of the nodes it stands in for.
struct InheritedNames {
  std::vector<std::string> params;
  std::vector<std::string> deps;
};
// By workflow name, from every node's `fallback` option.
std::map<std::string, InheritedNames> FallbackInheritance(
    const std::vector<WorkflowDeclaration>& workflows);

// The body of agent node `node` (declaration index `index`) of `workflow`;
// with `when`, wrapped so the Lua predicate runs first. Problems are
// Diagnostic lines appended to *problems.
std::shared_ptr<NodeBody> BuildAgent(const WorkflowDeclaration& workflow,
                                     const InheritedNames& inherited, const NodeDeclaration& node,
                                     int index, size_t memory,
                                     const std::shared_ptr<LuaStatePool>& pool,
                                     const std::shared_ptr<LlmClient>& client,
                                     std::vector<std::string>* problems);

// The provider an agent declaration names ("" when none).
std::string AgentProvider(const NodeDeclaration& node);

}  // namespace keel
