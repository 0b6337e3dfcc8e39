#pragma once
// NodeView: one node of a run as `keel show RUN --node NAME` and GET
// /api/v1/runs/ID/nodes/NAME present it — its status, attempt ledger and
// "why" (views/node_ledger.h), its input (its dependencies' recorded
// outputs), its output, its events and its LLM calls — and its JSON and text
// (one serializer each). Values over a cap (64 KiB) are replaced by
// {"$truncated": BYTES, "preview": "first 2 KiB"} and listed in
// "truncated"; the whole value is read with ReadNodeValue.
// Free functions over values the caller owns; any thread.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/store.h"
#include "views/json_out.h"
#include "views/node_ledger.h"

namespace keel {

// What the workflow says of a node: its kind and dependencies. The store
// does not hold the workflow, so the caller looks it up (the CLI loads the
// run's script, the service asks a child `keel graph`).
struct NodeShape {
  std::string kind;
  std::vector<std::string> deps;
};
// The shape of `node` in run `run`'s workflow; nullopt when the node is not
// one of the workflow's own (a map item, an inner node) or the workflow
// could not be read.
using NodeShapeLookup =
    std::function<std::optional<NodeShape>(const RunRecord& run, const std::string& node)>;

struct NodeView {
  RunRecord run;          // script_text as GetRun reads it
  std::string run_label;  // RunStatusLabel
  std::string node;
  std::string status;  // NodeStatusLabel; "pending" when not recorded
  std::string kind;    // from the shape; "item" / "inner" by name otherwise; "" unknown
  std::optional<NodeRecord> record;
  std::vector<AttemptEntry> attempts;
  std::string why;
  // (dependency, its recorded output; nullopt when it has none)
  std::vector<std::pair<std::string, std::optional<std::string>>> input;
  std::vector<EventRecord> events;  // the newest kMaxNodeEvents, in seq order
  bool events_cut = false;          // older events were left out
};

inline constexpr size_t kValueCap = 64 * 1024;
inline constexpr size_t kPreviewBytes = 2 * 1024;
inline constexpr int kMaxNodeEvents = 2000;

// Reads node `node` (an exact name) of run `run_id` (exact or a unique
// prefix). `shape` may be null. Fails with the store's error, or kPermanent
// "no node 'NAME' in run ID" when the run neither recorded it nor has it in
// its workflow.
Result<NodeView> ReadNodeView(Store& store, const std::string& run_id, const std::string& node,
                              const NodeShapeLookup& shape, double now);

// The node as one JSON object; values over `cap` bytes truncated.
void WriteNodeViewJson(JsonOut* out, const NodeView& view, size_t cap = kValueCap);

// The node as text for a terminal.
std::string NodeViewText(const NodeView& view);

// The whole recorded output of `view`'s node ("output"), or of its
// dependency `dep` ("input", dep). Fails (kPermanent, naming it) when there
// is none or `dep` is not one of its dependencies.
Result<std::string> NodeValue(const NodeView& view, const std::string& which,
                              const std::string& dep);

}  // namespace keel
