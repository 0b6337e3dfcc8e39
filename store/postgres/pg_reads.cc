// PostgresStore's reads, each on a connection borrowed from the pool.
// Mirrors store/sqlite/sqlite_reader.cc; runs created in the same second
// list by id where SQLite uses its rowid.

#include <functional>
#include <string_view>

#include "store/postgres/pg_rows.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_store.h"

namespace keel {
namespace {

using pg::Connection;
using pg::Num;
using pg::Rows;

Status NoRun(const std::string& id, const Connection& conn) {
  return Status::Error(ErrorKind::kPermanent, "no run '" + id + "' in " + conn.name());
}

// A column summing `field` over the run's usage events (engine/usage.h),
// including those of its fallback workflows, which come wrapped. Data that
// is not a JSON object counts nothing (it cannot be cast).
std::string UsageSum(const char* field) {
  const std::string f = field;
  return ", (SELECT COALESCE(sum(CASE WHEN e.kind = 'llm_call' THEN "
         "(e.data_json::jsonb ->> '" + f + "')::double precision "
         "WHEN e.data_json::jsonb ->> 'event' = 'llm_call' THEN "
         "(e.data_json::jsonb -> 'data' ->> '" + f + "')::double precision END), 0) "
         "FROM events e WHERE e.run_id = r.id AND e.kind IN ('llm_call', 'fallback_event') "
         "AND left(ltrim(e.data_json), 1) = '{')";
}

std::string ListingSql() {
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
  return std::string("SELECT ") + pg::kRunColumnsNoScript +
         ", (SELECT count(*) FROM nodes n WHERE n.run_id = r.id AND n.status IN (" + done_list +
         ") AND strpos(n.node, '[') = 0 AND strpos(n.node, '/') = 0 AND "
         "strpos(n.node, '#') = 0)" +
         UsageSum("prompt_tokens") + UsageSum("completion_tokens") + UsageSum("cost") +
         " FROM runs r WHERE true";
}

void ListingFromRow(const Rows& rows, int i, RunListing* listing) {
  pg::RunFromRow(rows, i, &listing->run);
  listing->nodes_done = static_cast<int>(rows.int64(i, 22));
  listing->usage.prompt_tokens = static_cast<int64_t>(rows.real(i, 23));
  listing->usage.completion_tokens = static_cast<int64_t>(rows.real(i, 24));
  listing->usage.cost = rows.real(i, 25);
}

// FNV-1a of `text`.
int64_t Hash(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<int64_t>(h >> 1);
}

}  // namespace

Status PostgresStore::OnReader(const std::function<Status(pg::Connection&)>& fn) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  return fn(**lease);
}

Result<RunRecord> PostgresStore::GetRun(const std::string& id) {
  if (id.empty()) return Status::Error(ErrorKind::kPermanent, "empty run id");
  RunRecord run;
  Status status = OnReader([&](Connection& c) -> Status {
    const std::string sql = std::string("SELECT ") + pg::kRunColumns + " FROM runs WHERE id = $1";
    auto exact = c.Exec(sql, {id}, "reading run " + id);
    if (!exact.ok()) return exact.status();
    if (exact->size() == 1) {
      pg::RunFromRow(*exact, 0, &run);
      return Status::Ok();
    }
    // Every id that starts with `id` sorts in [id, id || U+10FFFF) in the C
    // collation: compared byte by byte, as SQLite does.
    auto ids = c.Exec("SELECT id FROM runs WHERE starts_with(id, $1) ORDER BY id COLLATE \"C\" "
                      "LIMIT 6",
                      {id}, "looking up run " + id);
    if (!ids.ok()) return ids.status();
    if (ids->size() == 0) return NoRun(id, c);
    if (ids->size() > 1) {
      std::string list;
      for (int i = 0; i < ids->size() && i < 5; ++i) list += (i ? ", " : "") + ids->str(i, 0);
      if (ids->size() > 5) list += ", ...";
      return Status::Error(ErrorKind::kPermanent,
                           "run id '" + id + "' is ambiguous: it matches " + list);
    }
    auto found = c.Exec(sql, {ids->str(0, 0)}, "reading run " + id);
    if (!found.ok()) return found.status();
    if (found->size() == 0) return NoRun(id, c);  // deleted in between
    pg::RunFromRow(*found, 0, &run);
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return run;
}

Result<std::vector<NodeRecord>> PostgresStore::GetNodes(const std::string& run_id) {
  std::vector<NodeRecord> nodes;
  Status status = OnReader([&](Connection& c) -> Status {
    auto read = pg::ReadRows<NodeRecord>(
        c, std::string("SELECT ") + pg::kNodeColumns + " FROM nodes WHERE run_id = $1 ORDER BY ord",
        {run_id}, "reading the nodes of run " + run_id,
        [](const Rows& r, int i, NodeRecord* n) { pg::NodeFromRow(r, i, n); });
    if (!read.ok()) return read.status();
    nodes = std::move(read).value();
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return nodes;
}

Result<std::vector<EventRecord>> PostgresStore::GetEvents(const std::string& run_id) {
  std::vector<EventRecord> events;
  Status status = OnReader([&](Connection& c) -> Status {
    auto read = pg::ReadRows<EventRecord>(
        c, std::string("SELECT ") + pg::kEventColumns + " FROM events WHERE run_id = $1 ORDER BY seq",
        {run_id}, "reading the events of run " + run_id,
        [](const Rows& r, int i, EventRecord* e) { pg::EventFromRow(r, i, e); });
    if (!read.ok()) return read.status();
    events = std::move(read).value();
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return events;
}

Result<std::vector<RunListing>> PostgresStore::ListRuns(const RunFilter& filter) {
  std::string sql = ListingSql();
  pg::Params params;
  auto param = [&](std::string value) {
    params.push_back(std::move(value));
    return "$" + std::to_string(params.size());
  };
  if (filter.status) sql += " AND status = " + param(std::string(RunStatusName(*filter.status)));
  if (!filter.workflow.empty()) sql += " AND workflow = " + param(filter.workflow);
  if (!filter.before.empty()) {
    sql += " AND (created_at, id) < (SELECT created_at, id FROM runs WHERE id = " +
           param(filter.before) + ")";
  }
  if (filter.since > 0) sql += " AND created_at >= " + param(Num(filter.since)) + "::double precision";
  sql += " ORDER BY created_at DESC, id DESC";
  if (filter.limit > 0) sql += " LIMIT " + param(Num(filter.limit));
  std::vector<RunListing> listings;
  Status status = OnReader([&](Connection& c) -> Status {
    auto read = pg::ReadRows<RunListing>(c, sql, params, "listing runs", ListingFromRow);
    if (!read.ok()) return read.status();
    listings = std::move(read).value();
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return listings;
}

Result<std::vector<ScriptVersion>> PostgresStore::GetScriptVersions(const std::string& run_id) {
  std::vector<ScriptVersion> versions;
  Status status = OnReader([&](Connection& c) -> Status {
    auto rows = c.Exec("SELECT version, created_at, script_path, script_sha256, script_text "
                       "FROM script_versions WHERE run_id = $1 ORDER BY version",
                       {run_id}, "reading the script versions of run " + run_id);
    if (!rows.ok()) return rows.status();
    for (int i = 0; i < rows->size(); ++i) {
      ScriptVersion& v = versions.emplace_back();
      v.version = static_cast<int>(rows->int64(i, 0));
      v.created_at = rows->real(i, 1);
      v.script_path = rows->str(i, 2);
      v.script_sha256 = rows->str(i, 3);
      v.script_text = rows->str(i, 4);
    }
    if (versions.empty()) {
      auto run = c.Exec("SELECT created_at, script_path, script_sha256, script_text FROM runs "
                        "WHERE id = $1",
                        {run_id}, "reading run " + run_id);
      if (!run.ok()) return run.status();
      if (run->size() == 0) return NoRun(run_id, c);
      ScriptVersion& v = versions.emplace_back();
      v.created_at = run->real(0, 0);
      v.script_path = run->str(0, 1);
      v.script_sha256 = run->str(0, 2);
      v.script_text = run->str(0, 3);
      return Status::Ok();
    }
    auto modules = c.Exec("SELECT version, name, path, sha256, text FROM script_modules "
                          "WHERE run_id = $1 ORDER BY version, seq",
                          {run_id}, "reading the script modules of run " + run_id);
    if (!modules.ok()) return modules.status();
    for (int i = 0; i < modules->size(); ++i) {
      const int version = static_cast<int>(modules->int64(i, 0));
      for (ScriptVersion& v : versions) {
        if (v.version != version) continue;
        v.modules.push_back(
            {modules->str(i, 1), modules->str(i, 2), modules->str(i, 3), modules->str(i, 4)});
        break;
      }
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return versions;
}

Status PostgresStore::CheckReady() {
  return OnReader([&](Connection& c) -> Status {
    auto state = c.Exec("SELECT current_setting('transaction_read_only'), pg_is_in_recovery()",
                        {}, "checking that the database takes writes");
    if (!state.ok()) return state.status();
    if (state->str(0, 0) == "on" || state->boolean(0, 1)) {
      return Status::Error(ErrorKind::kPermanent,
                           c.name() + " is read-only: it does not take writes");
    }
    auto version = pg::SchemaVersion(c);
    if (!version.ok()) return version.status();
    if (*version != pg::LatestSchemaVersion()) {
      return Status::Error(ErrorKind::kPermanent,
                           c.name() + ": the keel schema is version " + std::to_string(*version) +
                               ", this keel writes " + std::to_string(pg::LatestSchemaVersion()));
    }
    return Status::Ok();
  });
}

// The current snapshot (txid_current_snapshot: the next transaction id and
// those still in progress, cluster-wide) changes whenever a transaction that
// wrote anything starts or ends, so it changes whenever a commit could have
// changed what a read sees — and not on reads. Other databases' writes on
// the same server change it too: a reader then reads again needlessly,
// never stale data.
Result<int64_t> PostgresStore::DataVersion() {
  int64_t version = 0;
  Status status = OnReader([&](Connection& c) -> Status {
    auto snapshot = c.Exec("SELECT txid_current_snapshot()::text", {}, "reading the data version");
    if (!snapshot.ok()) return snapshot.status();
    version = Hash(snapshot->text(0, 0));
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return version;
}

}  // namespace keel
