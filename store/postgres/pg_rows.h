#pragma once
// How rows of the runs, nodes and events tables are written and read in
// PostgreSQL, shared by every part of the PostgreSQL store so that each
// reads and writes a run the same way.
//
// Free functions and constants; each takes the connection it is given and
// must run inside the caller's transaction where it writes.

#include <cstdint>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "engine/store.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// `text` as PostgreSQL text can hold it: valid UTF-8 without NUL. Bytes that
// are not UTF-8 and NULs become U+FFFD, so a record whose error message
// came from a program printing Latin-1 is kept (nearly) as it was instead of
// failing its batch. Unchanged when already valid.
std::string PgText(std::string_view text);
inline std::string PgText(const std::string& text) { return PgText(std::string_view(text)); }
inline std::optional<std::string> PgText(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  return PgText(std::string_view(*text));
}

// Refuses (kPermanent, naming the file) a run whose script, modules or params
// are not valid UTF-8 or hold a NUL: PostgreSQL keeps text as UTF-8, and a
// script must reach other hosts exactly as it was written.
Status CheckRunText(const RunRecord& run);

// Parameter text of a number that reads back exactly (shortest round-trip form).
std::string Num(double value);
std::string Num(int64_t value);
inline std::string Num(int value) { return Num(static_cast<int64_t>(value)); }

// The run columns as RunFromRow reads them (22; script_text is the fifth).
// kRunColumnsNoScript selects '' in place of script_text, for listings.
extern const char kRunColumns[];
extern const char kRunColumnsNoScript[];
// The node columns as NodeFromRow reads them (10), and the event columns
// as EventFromRow reads them (6). Select nodes ORDER BY ord for
// first-insert order.
extern const char kNodeColumns[];
extern const char kEventColumns[];

// Decode row `row` of `rows`, starting at column `col`. Unknown status or
// kind names read as a failure, as in the SQLite store.
void RunFromRow(const Rows& rows, int row, RunRecord* run, int col = 0);
void NodeFromRow(const Rows& rows, int row, NodeRecord* node, int col = 0);
void EventFromRow(const Rows& rows, int row, EventRecord* event, int col = 0);

// Inserts run `run` (its epoch 1), its script version 1 with `run.modules`,
// and the records `kept` (a fork's, with script_version 0). Fails
// (kPermanent) when the id exists.
Status InsertRun(Connection& conn, const RunRecord& run, const std::vector<NodeRecord>& kept = {});

// Inserts or replaces node record `node`, keeping its first-insert order.
// `script_version` < 0 takes the run's current one.
Status UpsertNode(Connection& conn, const NodeRecord& node);

// The advisory lock (pg_advisory_xact_lock) a transaction holds from its
// first event insert to its commit, so event cursors grow in commit order.
// Every writer takes it after the run rows it locks, and as late as it can
// (best in the same pipeline as its COMMIT): it is held by one writer at a
// time across the whole database.
constexpr int64_t kEventCursorLock = 0x6b65656c02;

// Appends `events` (their seq assigned here, from runs.last_seq, so no two
// processes give one twice; ts, node, kind, data_json as given) and sets
// each one's seq. Locks the runs' rows, then takes the event-cursor lock. Fails (kPermanent) for a
// run that does not exist.
Status InsertEvents(Connection& conn, std::vector<EventRecord>* events);

// Reads rows through `sql` and decodes each with `fill(rows, row, T*)`.
template <typename T, typename Fill>
Result<std::vector<T>> ReadRows(Connection& conn, std::string_view sql, const Params& params,
                                std::string_view what, Fill fill) {
  auto rows = conn.Exec(sql, params, what);
  if (!rows.ok()) return rows.status();
  std::vector<T> out(static_cast<size_t>(rows->size()));
  for (int i = 0; i < rows->size(); ++i) fill(*rows, i, &out[static_cast<size_t>(i)]);
  return out;
}

}  // namespace keel::pg
