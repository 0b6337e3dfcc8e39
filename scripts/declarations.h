#pragma once
// Declarations: the DSL half of the `keel` module (keel.fn, keel.agent,
// keel.provider, keel.workflow) and the reader that turns what a script
// declared into C++ values.
//
// `keel.fn "name" { ... }` and `keel.agent "name" { ... }` check their options
// at once (so mistakes are reported at the declaring line) and return a node
// declaration table; `keel.provider "name" { ... }` checks its options,
// registers the provider in the state and returns its name;
// `keel.workflow "name" { ... }` checks its entries, registers the workflow in
// the state and returns it. After the chunk has run, ReadDeclarations reads
// the registered workflows and providers back.
//
// Thread-safety: functions here touch one lua_State and run on the thread
// that holds it.

#include <string>
#include <utility>
#include <vector>

#include "engine/json_text.h"
#include "engine/status.h"
#include "engine/usage.h"
#include "nodes/provider_config.h"
#include "scripts/schedule_declarations.h"

struct lua_State;

namespace keel {

struct NodeDeclaration {
  std::string name;
  std::string where;  // "file.lua:12"
  std::vector<std::string> after;
  bool optional = false;
  bool has_run = false;
  bool has_when = false;
  // An object holding the policy options the node gave (timeout,
  // total_timeout, retry, circuit, fallback, join, memory, max_concurrency).
  // Fallback workflows appear as their names.
  JsonText policy;
  std::string kind = "fn";  // "fn" (keel.fn), "agent" (keel.agent) or "wait" (keel.wait)
  // Agents: an object of the agent options the node gave — provider, prompt,
  // system, messages, model, temperature, max_tokens, output, max_turns as
  // given; hedge as {delay, max} (max defaults to 2); tools as
  // {NAME: {description, parameters}} (description defaults to "",
  // parameters to {"properties":{},"type":"object"}; each tool's `run`
  // function is in NodeFunctions::tools). Null for fn nodes.
  JsonText agent;
  // keel.wait (kind "wait"): an object of its options as given: signal,
  // timeout, delay, until. Null for other kinds.
  JsonText wait;
  // keel.map, keel.call, keel.loop: the workflow they run ("" for a map of
  // nodes), a map's max_concurrency (0: not given) and tolerate, a loop's
  // max_iterations, and whether over / params / done_when were given.
  std::string workflow;
  int max_concurrency = 0;
  double tolerate = 0;
  int max_iterations = 0;
  bool has_value = false;      // over (map) or params (call)
  bool has_done_when = false;  // loop
  // A map's `node`: the item declaration (unnamed), when it has one. Its
  // functions follow the map's in NodeFunctions order.
  std::vector<NodeDeclaration> inner;
};

struct WorkflowDeclaration {
  std::string name;
  std::string where;
  JsonText params;    // an object: the `params` defaults
  JsonText defaults;  // an object: the `defaults` policy options
  Budget budget;      // the `budget` option: { tokens = N, cost = X }; unlimited when absent
  std::string on_failure;  // the `on_failure` option: a workflow's name; "" when absent
  std::vector<NodeDeclaration> nodes;
};

struct ScriptDeclarations {
  std::vector<WorkflowDeclaration> workflows;  // in declaration order
  int main = -1;                               // the workflow the script returned
  std::vector<ProviderConfig> providers;       // keel.provider declarations, in order
  // The Lua modules the script required from files while it ran, in load
  // order: (name as required, file name); see RequiredModules.
  std::vector<std::pair<std::string, std::string>> required;
  std::vector<ScheduleDeclaration> schedules;  // keel.schedule declarations, in order
};

// Registry references to one node's functions in one state; kNoFunction
// (LUA_NOREF) when the node has none.
inline constexpr int kNoFunction = -2;
struct NodeFunctions {
  int run = kNoFunction;
  int when = kNoFunction;
  std::vector<std::pair<std::string, int>> tools;  // agent tools' run functions, in name order
  int value = kNoFunction;      // map: over; call: params
  int done_when = kNoFunction;  // loop
};

// Creates the registry entries the DSL uses (the lists of declared workflows
// and providers, the declaration metatables). Call once per state, before the
// script runs.
void InstallDeclarations(lua_State* L);
// Sets `fn`, `agent`, `provider` and `workflow` on the table at the top of L's stack.
void AddDeclarationFunctions(lua_State* L);

// True when the value at `index` is a workflow returned by keel.workflow.
bool IsWorkflowObject(lua_State* L, int index);
// True when the value at `index` is a node declaration (keel.fn, keel.agent, ...).
bool IsNodeDeclaration(lua_State* L, int index);

// "file.lua:12": where the script code that called the running C function
// is: the nearest calling frame of a file chunk, so a Lua wrapper keel puts
// around a C function (keel.llm, keel.http) is skipped. Uses the chunk name
// without its '@', so the path is the one the user gave. Without such a
// frame, the nearest Lua frame's short name; "?" when there is none.
std::string CallerWhere(lua_State* L);

// Reads the workflows and providers the chunk registered in L. `returned` is
// the stack index of the chunk's first return value, or 0 when it returned
// nothing; `chunk_name` is the script path as the user gave it. Appends to
// *functions the registry references of every node's functions, workflow by
// workflow, node by node. Fails (kPermanent) when the chunk did not return a
// workflow. Call with the memory cap disarmed.
Status ReadDeclarations(lua_State* L, int returned, const std::string& chunk_name,
                        ScriptDeclarations* declarations, std::vector<NodeFunctions>* functions);

}  // namespace keel
