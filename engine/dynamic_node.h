#pragma once
// Dynamic nodes: keel.map (a runtime fan-out over a list), keel.call (a
// sub-workflow) and keel.loop (a sub-workflow run until a predicate holds).
//
// Their user functions (`over`, `params`, `done_when`) are NodeFunctions the
// scripts layer provides, so the engine stays free of Lua. Items and inner
// nodes run as child RunStates that record under prefixed names in the same
// run: `m[1]`, `m[2]`, ... for map items (and `m[1]/fetch` for the nodes of a
// workflow run per item), `c/fetch` for a call, `r#2/review` for iteration 2
// of a loop. See map_run.cc and sub_workflow_run.cc.
//
// Thread-safety: a DynamicNode is immutable once built and may be read from
// any thread; NodeFunction::Call may be called from several threads at once.

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/workflow.h"

namespace keel {

// A user function evaluated on a node's context.
class NodeFunction {
 public:
  virtual ~NodeFunction() = default;
  // Evaluates the function for `ctx`, with `arg` (a loop's last output) as
  // its first argument when not null. Calls `done` exactly once, from any
  // thread, with Success(the value as JSON), Skipped() (the node's `when`
  // said no) or a failure. Runs on a worker; must not block or throw. The
  // caller keeps `ctx` alive until `done` has been called.
  virtual void Call(const NodeContext& ctx, JsonText arg, NodeCompletion done) = 0;
};

struct DynamicNode {
  enum class Kind { kMap, kCall, kLoop };
  Kind kind = Kind::kMap;
  // The node's `when` (if any) and then its value: a map's `over` (the
  // list), a call's `params` (an object); null when the node has no such
  // function (a loop).
  std::shared_ptr<NodeFunction> start;
  std::shared_ptr<NodeFunction> done_when;  // loop: done_when(out, ctx)
  // call, loop and a map of workflows: the workflow to run (its name).
  std::string workflow;
  // A map of nodes: a one-node workflow whose node (named "") is the item,
  // with the map's policies under its own.
  std::shared_ptr<const WorkflowSpec> item;
  int max_concurrency = 0;  // map: items in flight; 0: kDefaultMapWindow
  double tolerate = 0;      // map: fraction of items that may fail, in [0, 1]
  int max_iterations = 0;   // loop
};

// Items a map keeps in flight when `max_concurrency` is not given: enough
// to keep workers and I/O busy while bounding memory (items are created
// lazily, as earlier ones finish).
inline constexpr int kDefaultMapWindow = 1024;

// How deep call, loop and workflow maps may nest at run time.
inline constexpr int kMaxCallDepth = 8;

// The byte ranges [first, second) of the elements of the JSON array `json`
// (text as LuaToJson or rapidjson writes it: valid JSON). False when `json`
// is not an array; an empty object counts as an empty array (Lua cannot tell
// the two apart).
bool SplitJsonArray(std::string_view json, std::vector<std::pair<size_t, size_t>>* spans);

// `defaults` (a JSON object, may be null) with the members of `overrides`
// (a JSON object, may be null) added or replacing theirs.
JsonText MergeJsonObjects(const JsonText& defaults, const JsonText& overrides);

// The list a map's `over` gave an earlier attempt, as it checkpointed it in
// the map node's journal; null when there is none.
JsonText RecordedMapList(const std::vector<JsonText>& journal);

// Checks across the workflows of one file: every call, loop and workflow
// map names a declared workflow (with a did-you-mean), the workflow has an
// output node, and no chain of calls leads back to a workflow on it.
std::vector<Diagnostic> ValidateDynamic(const std::vector<WorkflowSpec>& workflows);

// Whether a recorded node name is one a dynamic node's items or inner nodes
// use (`m[3]`, `c/fetch`, `r#2/x`): declared names never contain '[', '/'
// or '#'.
inline bool IsInnerNodeName(std::string_view name) {
  return name.find_first_of("[/#") != std::string_view::npos;
}

}  // namespace keel
