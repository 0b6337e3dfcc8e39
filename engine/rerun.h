#pragma once
// Rerun: which recorded nodes `keel resume --from NODE` runs again and which
// `keel fork --from NODE` reuses. Downstream-ness follows the workflow's
// `after` edges. A node of a dynamic kind records its inner nodes under
// prefixed names (`m[3]` items of map `m`, `c/fetch` inner nodes of call
// `c`, `r#2/review` of loop `r`), so a record belongs to node X when its
// name is X or starts with `X[`, `X/` or `X#`. Free functions; safe from any
// thread.

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "engine/executor.h"
#include "engine/status.h"
#include "engine/workflow.h"

namespace keel {

// `from` and every node downstream of it in `workflow` (transitively by
// `after`), in workflow order. Fails (kPermanent) when `workflow` has no node
// `from`: "no node 'x' in workflow 'w' (did you mean 'y'?)".
Result<std::vector<std::string>> NodesFrom(const WorkflowSpec& workflow, const std::string& from);

// Whether the record named `record` belongs to one of `nodes`: its name is
// one of them, or starts with one of them followed by '[', '/' or '#'.
bool RecordOfAny(std::string_view record, const std::unordered_set<std::string>& nodes);

// Forgets what `history` holds for records of `nodes`: their checkpoints
// (and the fallback workflows' run for them), wait due times and attempt
// counts, so that those run afresh.
void DropHistory(const std::unordered_set<std::string>& nodes, RunHistory* history);

// The kind of the event that a claim for `keel resume --from` writes in its
// transaction; its data is {"from": NODE, "nodes": [names]}. ReadRunHistory
// drops the checkpoints recorded before it for those nodes.
inline constexpr char kRerunEventKind[] = "rerun";

// The data of a kRerunEventKind event, and the nodes it names (empty when
// `data_json` is not such data).
std::string RerunEventData(const std::string& from, const std::vector<std::string>& nodes);
std::unordered_set<std::string> RerunEventNodes(const std::string& data_json);

}  // namespace keel
