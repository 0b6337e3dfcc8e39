#include "store/sqlite/sqlite_reader.h"

#include <string_view>

#include "store/sqlite/sqlite_breakers.h"
#include "store/sqlite/sqlite_rows.h"
#include "store/sqlite/sqlite_schema.h"

namespace keel::sqlite {
namespace {

constexpr char kIdsByPrefix[] =
    "SELECT id FROM runs WHERE id >= ?1 AND id < ?2 ORDER BY id LIMIT 6";
constexpr char kEvents[] =
    "SELECT run_id, seq, ts, node, kind, data_json FROM events WHERE run_id = ?1 ORDER BY seq";

Status NoRun(const std::string& id, const std::string& path) {
  return Status::Error(ErrorKind::kPermanent, "no run '" + id + "' in " + path);
}

// A run's columns as RunFromRow reads them, then its count of done nodes.
void ListingFromRow(const Statement& row, RunListing* listing) {
  RunFromRow(row, &listing->run);
  listing->nodes_done = static_cast<int>(row.Int(kRunColumnCount));
  listing->usage.prompt_tokens = row.Int(kRunColumnCount + 1);
  listing->usage.completion_tokens = row.Int(kRunColumnCount + 2);
  listing->usage.cost = row.Real(kRunColumnCount + 3);
}

// A column summing `field` over the run's usage events (engine/usage.h),
// including those of its fallback workflows, which come wrapped. An event
// whose data is not valid JSON (written by an older keel, or damaged) counts
// nothing: json_extract would fail the whole listing.
std::string UsageSum(const char* field) {
  return std::string(
             ", (SELECT total(CASE WHEN e.kind = 'llm_call' THEN json_extract(e.data_json, '$.") +
         field +
         "') WHEN json_extract(e.data_json, '$.event') = 'llm_call' THEN "
         "json_extract(e.data_json, '$.data." +
         field +
         "') END) FROM events e WHERE e.run_id = r.id AND e.kind IN ('llm_call', 'fallback_event') "
         "AND json_valid(e.data_json))";
}

// A row of the breakers listing: key, updated_at, then kBreakerColumns.
void BreakerFromRow(const Statement& row, BreakerRow* breaker) {
  breaker->key = row.Text(0);
  breaker->updated_at = row.Real(1);
  ReadBreaker(row, 2, &breaker->snapshot);
}

}  // namespace

Result<std::unique_ptr<SqliteReader>> SqliteReader::Create(std::unique_ptr<Connection> conn) {
  std::unique_ptr<SqliteReader> reader(new SqliteReader(std::move(conn)));
  Status status = reader->PrepareAll();
  if (!status.ok()) return status;
  return reader;
}

Status SqliteReader::PrepareAll() {
  const std::string full = std::string("SELECT ") + kRunColumnsHead + "script_text" +
                           kRunColumnsTail + " FROM runs WHERE id = ?1";
  std::string done_list;
  for (int i = 0; i <= static_cast<int>(NodeStatus::kFallback); ++i) {
    auto s = static_cast<NodeStatus>(i);
    if (!IsKeptOnResume(s)) continue;
    done_list += done_list.empty() ? "'" : ", '";
    done_list += NodeStatusName(s);
    done_list += "'";
  }
  // Map items and the inner nodes of calls and loops ('[', '/' or '#' in
  // their names) are not nodes of the workflow: they are not counted.
  const std::string listing = std::string("SELECT ") + kRunColumnsHead + "''" + kRunColumnsTail +
                              ", (SELECT count(*) FROM nodes n WHERE n.run_id = r.id AND "
                              "n.status IN (" +
                              done_list +
                              ") AND instr(n.node, '[') = 0 AND instr(n.node, '/') = 0 AND "
                              "instr(n.node, '#') = 0)" + UsageSum("prompt_tokens") +
                              UsageSum("completion_tokens") + UsageSum("cost") + " FROM runs r ";
  listing_sql_ = listing;
  const std::string order = " ORDER BY created_at DESC, rowid DESC LIMIT ?1";
  const std::string list_all = listing + order;
  const std::string list_by_status = listing + "WHERE status = ?2" + order;
  Status status = run_by_id_.Prepare(conn_.get(), full.c_str());
  if (status.ok()) status = ids_by_prefix_.Prepare(conn_.get(), kIdsByPrefix);
  if (status.ok()) status = nodes_.Prepare(conn_.get(), kSelectNodes);
  if (status.ok()) status = events_.Prepare(conn_.get(), kEvents);
  if (status.ok()) status = list_all_.Prepare(conn_.get(), list_all.c_str());
  if (status.ok()) status = list_by_status_.Prepare(conn_.get(), list_by_status.c_str());
  const std::string breakers =
      std::string("SELECT key, updated_at, ") + kBreakerColumns + " FROM breakers ORDER BY key";
  if (status.ok()) status = breakers_.Prepare(conn_.get(), breakers.c_str());
  if (status.ok()) status = versions_.Prepare(conn_.get());
  return status;
}

Result<bool> SqliteReader::ReadRun(const std::string& id, RunRecord* run) {
  Status status;
  run_by_id_.Bind(1, id);
  bool found = run_by_id_.Step(&status, "reading run " + id);
  if (found) RunFromRow(run_by_id_, run);
  run_by_id_.Reset();
  if (!status.ok()) return status;
  return found;
}

Result<RunRecord> SqliteReader::GetRun(const std::string& id) {
  if (id.empty()) return Status::Error(ErrorKind::kPermanent, "empty run id");
  RunRecord run;
  auto exact = ReadRun(id, &run);
  if (!exact.ok()) return exact.status();
  if (*exact) return run;

  // Every id that starts with `id` sorts in [id, id + "\xff"): UTF-8 text
  // never contains the byte 0xff.
  const std::string upper = id + '\xff';
  Status status;
  const std::string what = "looking up run " + id;
  std::vector<std::string> matches;
  ids_by_prefix_.Bind(1, id).Bind(2, upper);
  while (ids_by_prefix_.Step(&status, what)) {
    matches.push_back(ids_by_prefix_.Text(0));
  }
  ids_by_prefix_.Reset();
  if (!status.ok()) return status;
  if (matches.empty()) return NoRun(id, conn_->path());
  if (matches.size() > 1) {
    std::string list;
    for (size_t i = 0; i < matches.size() && i < 5; ++i) list += (i ? ", " : "") + matches[i];
    if (matches.size() > 5) list += ", ...";
    return Status::Error(ErrorKind::kPermanent,
                         "run id '" + id + "' is ambiguous: it matches " + list);
  }
  auto found = ReadRun(matches[0], &run);
  if (!found.ok()) return found.status();
  if (!*found) return NoRun(id, conn_->path());  // deleted in between
  return run;
}

Result<std::vector<NodeRecord>> SqliteReader::GetNodes(const std::string& run_id) {
  nodes_.Bind(1, run_id);
  return ReadRows<NodeRecord>(nodes_, "reading the nodes of run " + run_id, NodeFromRow);
}

Result<std::vector<EventRecord>> SqliteReader::GetEvents(const std::string& run_id) {
  events_.Bind(1, run_id);
  return ReadRows<EventRecord>(events_, "reading the events of run " + run_id, EventFromRow);
}

Result<std::vector<EventRecord>> SqliteReader::GetEventsAfter(const std::string& run_id,
                                                             int64_t after, int limit) {
  Statement stmt;
  Status prepared = stmt.Prepare(
      conn_.get(),
      "SELECT run_id, seq, ts, node, kind, data_json FROM events WHERE run_id = ?1 AND seq > ?2 "
      "ORDER BY seq LIMIT ?3");
  if (!prepared.ok()) return prepared;
  stmt.Bind(1, run_id).Bind(2, after).Bind(3, int64_t{limit});
  return ReadRows<EventRecord>(stmt, "reading the events of run " + run_id, EventFromRow);
}

Result<int64_t> SqliteReader::DataVersion() { return ReadPragma(conn_.get(), "data_version"); }

Result<std::vector<RunListing>> SqliteReader::ListRuns(const RunFilter& filter) {
  if (!filter.workflow.empty() || !filter.before.empty() || filter.since > 0) {
    // Walks the same indexes as the plain listings (runs_by_status or
    // runs_by_created, newest first) from the cursor on; the workflow is
    // checked on the rows walked.
    std::string sql = listing_sql_ + "WHERE 1";
    if (filter.status) sql += " AND status = ?2";
    if (!filter.workflow.empty()) sql += " AND workflow = ?3";
    if (!filter.before.empty()) {
      sql += " AND (created_at, rowid) < (SELECT created_at, rowid FROM runs WHERE id = ?4)";
    }
    if (filter.since > 0) sql += " AND created_at >= ?5";
    sql += " ORDER BY created_at DESC, rowid DESC LIMIT ?1";
    Statement stmt;
    Status prepared = stmt.Prepare(conn_.get(), sql.c_str());
    if (!prepared.ok()) return prepared;
    stmt.Bind(1, filter.limit > 0 ? int64_t{filter.limit} : int64_t{-1});
    if (filter.status) stmt.Bind(2, RunStatusName(*filter.status));
    if (!filter.workflow.empty()) stmt.Bind(3, filter.workflow);
    if (!filter.before.empty()) stmt.Bind(4, filter.before);
    if (filter.since > 0) stmt.Bind(5, filter.since);
    return ReadRows<RunListing>(stmt, "listing runs", ListingFromRow);
  }
  Statement& stmt = filter.status ? list_by_status_ : list_all_;
  stmt.Bind(1, filter.limit > 0 ? int64_t{filter.limit} : int64_t{-1});
  if (filter.status) stmt.Bind(2, RunStatusName(*filter.status));
  return ReadRows<RunListing>(stmt, "listing runs", ListingFromRow);
}

Result<std::vector<BreakerRow>> SqliteReader::ListBreakers() {
  return ReadRows<BreakerRow>(breakers_, "listing breakers", BreakerFromRow);
}

}  // namespace keel::sqlite
