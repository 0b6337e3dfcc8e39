#include "store/postgres/pg_rows.h"

#include <charconv>
#include <map>

#include "engine/utf8.h"
#include "store/postgres/pg_row_arrays.h"

namespace keel::pg {

std::string Num(double value) {
  char buf[64];
  auto end = std::to_chars(buf, buf + sizeof buf, value).ptr;
  return std::string(buf, end);
}

std::string Num(int64_t value) { return std::to_string(value); }

std::string PgText(std::string_view text) {
  if (IsUtf8(text) && text.find('\0') == std::string_view::npos) return std::string(text);
  std::string valid = ReplaceInvalidUtf8(text);
  std::string out;
  out.reserve(valid.size());
  for (char c : valid) {
    if (c == '\0') {
      out += "\xEF\xBF\xBD";
    } else {
      out += c;
    }
  }
  return out;
}

Status CheckRunText(const RunRecord& run) {
  auto bad = [](std::string_view text) {
    return !IsUtf8(text) || text.find('\0') != std::string_view::npos;
  };
  auto refuse = [&](const std::string& what) {
    return Status::Error(ErrorKind::kPermanent,
                         what + " is not valid UTF-8 text (or holds a NUL byte): a PostgreSQL "
                                "database keeps scripts as UTF-8; save the file as UTF-8");
  };
  if (bad(run.script_text)) return refuse("script " + run.script_path);
  for (const ScriptModule& m : run.modules) {
    if (bad(m.text)) return refuse("module " + m.path);
  }
  if (bad(run.params_json)) return refuse("the params of run " + run.id);
  if (bad(run.config_json)) return refuse("the configuration of run " + run.id);
  return Status::Ok();
}

#define KEEL_RUN_COLUMNS(SCRIPT)                                                              \
  "id, workflow, script_path, script_sha256, " SCRIPT                                         \
  ", params_json, status, owner_pid, owner_host, owner_start, heartbeat, created_at, "         \
  "updated_at, finished_at, node_count, error, epoch, idle_s, config_json, forked_from, "     \
  "forked_from_node, script_version"
const char kRunColumns[] = KEEL_RUN_COLUMNS("script_text");
const char kRunColumnsNoScript[] = KEEL_RUN_COLUMNS("'' AS script_text");
#undef KEEL_RUN_COLUMNS
const char kNodeColumns[] =
    "run_id, node, status, attempts, output_json, error_kind, error_message, started_at, "
    "finished_at, script_version";
const char kEventColumns[] = "run_id, seq, ts, node, kind, data_json";

void RunFromRow(const Rows& r, int i, RunRecord* run, int c) {
  run->id = r.str(i, c + 0);
  run->workflow = r.str(i, c + 1);
  run->script_path = r.str(i, c + 2);
  run->script_sha256 = r.str(i, c + 3);
  run->script_text = r.str(i, c + 4);
  run->params_json = r.str(i, c + 5);
  run->status = RunStatus::kFailed;
  ParseRunStatus(r.text(i, c + 6), &run->status);
  run->owner.pid = r.int64(i, c + 7);
  run->owner.host = r.str(i, c + 8);
  run->owner.start_ticks = r.int64(i, c + 9);
  run->heartbeat = r.real(i, c + 10);
  run->created_at = r.real(i, c + 11);
  run->updated_at = r.real(i, c + 12);
  run->finished_at = r.real(i, c + 13);
  run->node_count = static_cast<int>(r.int64(i, c + 14));
  run->error = r.str(i, c + 15);
  run->epoch = r.int64(i, c + 16);
  run->idle_s = r.real(i, c + 17);
  run->config_json = r.str(i, c + 18);
  run->forked_from = r.str(i, c + 19);
  run->forked_from_node = r.str(i, c + 20);
  run->script_version = static_cast<int>(r.int64(i, c + 21));
}

void NodeFromRow(const Rows& r, int i, NodeRecord* node, int c) {
  node->run_id = r.str(i, c + 0);
  node->node = r.str(i, c + 1);
  node->status = NodeStatus::kFailed;
  ParseNodeStatus(r.text(i, c + 2), &node->status);
  node->attempts = static_cast<int>(r.int64(i, c + 3));
  if (!r.null(i, c + 4)) node->output_json = r.str(i, c + 4);
  node->error_kind = ErrorKind::kError;
  ParseErrorKind(r.text(i, c + 5), &node->error_kind);
  node->error_message = r.str(i, c + 6);
  node->started_at = r.real(i, c + 7);
  node->finished_at = r.real(i, c + 8);
  node->script_version = static_cast<int>(r.int64(i, c + 9));
}

void EventFromRow(const Rows& r, int i, EventRecord* event, int c) {
  event->run_id = r.str(i, c + 0);
  event->seq = r.int64(i, c + 1);
  event->ts = r.real(i, c + 2);
  event->node = r.str(i, c + 3);
  event->kind = r.str(i, c + 4);
  event->data_json = r.str(i, c + 5);
}

namespace {

constexpr char kInsertRun[] =
    "INSERT INTO runs (id, workflow, script_path, script_sha256, script_text, params_json, "
    "status, owner_pid, owner_host, owner_start, heartbeat, created_at, updated_at, "
    "finished_at, node_count, error, config_json, forked_from, forked_from_node) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, "
    "$19) ON CONFLICT (id) DO NOTHING";
constexpr char kInsertVersion[] =
    "INSERT INTO script_versions (run_id, version, created_at, script_path, script_sha256, "
    "script_text) VALUES ($1, 1, $2, $3, $4, $5)";
constexpr char kInsertModule[] =
    "INSERT INTO script_modules (run_id, version, seq, name, path, sha256, text) "
    "VALUES ($1, 1, $2, $3, $4, $5, $6)";
constexpr char kUpsertNode[] =
    "INSERT INTO nodes (run_id, node, status, attempts, output_json, error_kind, "
    "error_message, started_at, finished_at, script_version) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
    "COALESCE($10::integer, (SELECT script_version FROM runs WHERE id = $1), 1)) "
    "ON CONFLICT (run_id, node) DO UPDATE SET status = excluded.status, "
    "attempts = excluded.attempts, output_json = excluded.output_json, "
    "error_kind = excluded.error_kind, error_message = excluded.error_message, "
    "started_at = excluded.started_at, finished_at = excluded.finished_at, "
    "script_version = excluded.script_version";

Params NodeParams(const NodeRecord& node, std::optional<int> version) {
  return {node.run_id,
          PgText(node.node),
          std::string(NodeStatusName(node.status)),
          Num(node.attempts),
          PgText(node.output_json),
          std::string(ErrorKindName(node.error_kind)),
          PgText(node.error_message),
          Num(node.started_at),
          Num(node.finished_at),
          version ? std::optional<std::string>(Num(*version)) : std::nullopt};
}

}  // namespace

Status InsertRun(Connection& conn, const RunRecord& run, const std::vector<NodeRecord>& kept) {
  if (Status text = CheckRunText(run); !text.ok()) return text;
  auto inserted = conn.Exec(kInsertRun,
                            {run.id, run.workflow, run.script_path, run.script_sha256,
                             run.script_text, run.params_json,
                             std::string(RunStatusName(run.status)), Num(run.owner.pid),
                             run.owner.host, Num(run.owner.start_ticks), Num(run.heartbeat),
                             Num(run.created_at), Num(run.updated_at), Num(run.finished_at),
                             Num(run.node_count), run.error, run.config_json, run.forked_from,
                             run.forked_from_node},
                            "creating run " + run.id);
  if (!inserted.ok()) return inserted.status();
  if (inserted->affected() == 0) {
    return Status::Error(ErrorKind::kPermanent,
                         "run " + run.id + " already exists in " + conn.name());
  }
  std::vector<Statement> rows;
  rows.push_back({kInsertVersion,
                  {run.id, Num(run.created_at), run.script_path, run.script_sha256,
                   run.script_text}});
  for (size_t i = 0; i < run.modules.size(); ++i) {
    const ScriptModule& m = run.modules[i];
    rows.push_back({kInsertModule,
                    {run.id, Num(static_cast<int64_t>(i)), m.name, m.path, m.sha256, m.text}});
  }
  for (NodeRecord node : kept) {  // a fork's copies of another run's records
    node.run_id = run.id;
    rows.push_back({kUpsertNode, NodeParams(node, 0)});
  }
  auto written = conn.Pipeline(rows, "recording the script and nodes of run " + run.id);
  return written.ok() ? Status::Ok() : written.status();
}

Status UpsertNode(Connection& conn, const NodeRecord& node) {
  auto saved = conn.Exec(kUpsertNode, NodeParams(node, std::nullopt),
                         "saving node " + node.node + " of run " + node.run_id);
  return saved.ok() ? Status::Ok() : saved.status();
}

Status InsertEvents(Connection& conn, std::vector<EventRecord>* events) {
  if (events->empty()) return Status::Ok();
  // Seqs per run, taken in one update each (locking the run rows, in id
  // order), then the event-cursor lock: the order every writer takes them.
  std::map<std::string, int64_t> count;
  for (const EventRecord& e : *events) ++count[e.run_id];
  std::map<std::string, int64_t> next;
  for (const auto& [run_id, n] : count) {
    auto taken = conn.Exec("UPDATE runs SET last_seq = last_seq + $2 WHERE id = $1 "
                           "RETURNING last_seq - $2",
                           {run_id, Num(n)}, "numbering the events of run " + run_id);
    if (!taken.ok()) return taken.status();
    if (taken->size() == 0) {
      return Status::Error(ErrorKind::kPermanent, "cannot record events of run " + run_id +
                                                      ": no such run in " + conn.name());
    }
    next[run_id] = taken->int64(0, 0) + 1;
  }
  EventRows rows;
  for (EventRecord& e : *events) {
    e.seq = next[e.run_id]++;
    rows.Add(e);
  }
  auto written = conn.Pipeline(
      {{"SELECT pg_advisory_xact_lock($1)", {Num(kEventCursorLock)}}, rows.ToStatement()},
      "recording events");
  return written.ok() ? Status::Ok() : written.status();
}

}  // namespace keel::pg
