#include "store/sqlite/sqlite_rows.h"

namespace keel::sqlite {

const char kRunColumnsHead[] = "id, workflow, script_path, script_sha256, ";
const char kRunColumnsTail[] =
    ", params_json, status, owner_pid, owner_host, owner_start, heartbeat, created_at, "
    "updated_at, finished_at, node_count, error, epoch, idle_s, config_json, forked_from, "
    "forked_from_node, script_version";

#define KEEL_SELECT_NODE_COLUMNS                                                             \
  "SELECT run_id, node, status, attempts, output_json, error_kind, error_message, started_at, " \
  "finished_at, script_version FROM nodes "
const char kSelectNodeColumns[] = KEEL_SELECT_NODE_COLUMNS;
const char kSelectNodes[] = KEEL_SELECT_NODE_COLUMNS "WHERE run_id = ?1 ORDER BY rowid";
#undef KEEL_SELECT_NODE_COLUMNS
const char kSelectEventColumns[] = "SELECT run_id, seq, ts, node, kind, data_json FROM events ";

void EventFromRow(const Statement& row, EventRecord* event) {
  event->run_id = row.Text(0);
  event->seq = row.Int(1);
  event->ts = row.Real(2);
  event->node = row.Text(3);
  event->kind = row.Text(4);
  event->data_json = row.Text(5);
}

void RunFromRow(const Statement& row, RunRecord* run) {
  run->id = row.Text(0);
  run->workflow = row.Text(1);
  run->script_path = row.Text(2);
  run->script_sha256 = row.Text(3);
  run->script_text = row.Text(4);
  run->params_json = row.Text(5);
  // A damaged status reads as a failure rather than failing the read.
  run->status = RunStatus::kFailed;
  ParseRunStatus(row.Text(6), &run->status);
  run->owner.pid = row.Int(7);
  run->owner.host = row.Text(8);
  run->owner.start_ticks = row.Int(9);
  run->heartbeat = row.Real(10);
  run->created_at = row.Real(11);
  run->updated_at = row.Real(12);
  run->finished_at = row.Real(13);
  run->node_count = static_cast<int>(row.Int(14));
  run->error = row.Text(15);
  run->epoch = row.Int(16);
  run->idle_s = row.Real(17);
  run->config_json = row.Text(18);
  run->forked_from = row.Text(19);
  run->forked_from_node = row.Text(20);
  run->script_version = static_cast<int>(row.Int(21));
}

void NodeFromRow(const Statement& row, NodeRecord* node) {
  node->run_id = row.Text(0);
  node->node = row.Text(1);
  node->status = NodeStatus::kFailed;
  ParseNodeStatus(row.Text(2), &node->status);
  node->attempts = static_cast<int>(row.Int(3));
  if (!row.IsNull(4)) node->output_json = row.Text(4);
  node->error_kind = ErrorKind::kError;
  ParseErrorKind(row.Text(5), &node->error_kind);
  node->error_message = row.Text(6);
  node->started_at = row.Real(7);
  node->finished_at = row.Real(8);
  node->script_version = static_cast<int>(row.Int(9));
}

}  // namespace keel::sqlite
