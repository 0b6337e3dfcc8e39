#include "store/postgres/pg_row_arrays.h"

#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

constexpr char kInsertEvents[] =
    "INSERT INTO events (cursor, run_id, seq, ts, node, kind, data_json) "
    "SELECT nextval('events_cursor'), run_id, seq, ts, node, kind, data_json FROM unnest("
    "$1::text[], $2::bigint[], $3::double precision[], $4::text[], $5::text[], $6::text[]) "
    "WITH ORDINALITY AS e(run_id, seq, ts, node, kind, data_json, n) ORDER BY n";

constexpr char kInsertEventsTakingSeqs[] =
    "INSERT INTO events (cursor, run_id, seq, ts, node, kind, data_json) "
    "SELECT nextval('events_cursor'), e.run_id, r.last_seq - $7::bigint + e.n, e.ts, e.node, "
    "e.kind, e.data_json FROM unnest("
    "$1::text[], $2::bigint[], $3::double precision[], $4::text[], $5::text[], $6::text[]) "
    "WITH ORDINALITY AS e(run_id, seq, ts, node, kind, data_json, n) "
    "JOIN runs r ON r.id = e.run_id ORDER BY e.n";

#define KEEL_NODE_COLUMNS                                                                \
  "INSERT INTO nodes (run_id, node, status, attempts, output_json, error_kind, "         \
  "error_message, started_at, finished_at, script_version) "
#define KEEL_NODE_CONFLICT                                                               \
  " ON CONFLICT (run_id, node) DO UPDATE SET status = excluded.status, "                 \
  "attempts = excluded.attempts, output_json = excluded.output_json, "                   \
  "error_kind = excluded.error_kind, error_message = excluded.error_message, "           \
  "started_at = excluded.started_at, finished_at = excluded.finished_at, "               \
  "script_version = excluded.script_version"
constexpr char kUpsertNodes[] =
    KEEL_NODE_COLUMNS
    "SELECT run_id, node, status, attempts, output_json, error_kind, error_message, "
    "started_at, finished_at, COALESCE(script_version, "
    "(SELECT r.script_version FROM runs r WHERE r.id = u.run_id), 1) FROM unnest("
    "$1::text[], $2::text[], $3::text[], $4::integer[], $5::text[], $6::text[], $7::text[], "
    "$8::double precision[], $9::double precision[], $10::integer[]) WITH ORDINALITY AS "
    "u(run_id, node, status, attempts, output_json, error_kind, error_message, started_at, "
    "finished_at, script_version, n) ORDER BY n" KEEL_NODE_CONFLICT;
// One row, its values as scalar parameters: the server keeps one plan for
// it, where the arrays of kUpsertNodes make it plan every call.
constexpr char kUpsertNode[] =
    KEEL_NODE_COLUMNS
    "VALUES ($1, $2, $3, $4::integer, $5, $6, $7, $8::double precision, $9::double precision, "
    "COALESCE($10::integer, (SELECT r.script_version FROM runs r WHERE r.id = $1), 1))"
    KEEL_NODE_CONFLICT;
#undef KEEL_NODE_COLUMNS
#undef KEEL_NODE_CONFLICT

void AppendQuoted(const std::string& value, std::string* out) {
  *out += '"';
  for (char c : value) {
    if (c == '"' || c == '\\') *out += '\\';
    *out += c;
  }
  *out += '"';
}

// Columns [from, to) of the rows, each as an array literal.
Params Arrays(const std::vector<std::vector<std::optional<std::string>>>& rows, size_t from,
              size_t to) {
  Params arrays;
  for (size_t col = from; col < to; ++col) {
    std::vector<std::optional<std::string>> column;
    column.reserve(rows.size());
    for (const auto& row : rows) column.push_back(row[col]);
    arrays.push_back(ArrayLiteral(column));
  }
  return arrays;
}

// The rows' columns as array parameters.
Statement Columns(const char* sql, const std::vector<std::vector<std::optional<std::string>>>& rows,
                  size_t width) {
  return {sql, Arrays(rows, 0, width)};
}

}  // namespace

std::string ArrayLiteral(const std::vector<std::optional<std::string>>& values) {
  std::string out = "{";
  for (const auto& value : values) {
    if (out.size() > 1) out += ',';
    if (value) {
      AppendQuoted(*value, &out);
    } else {
      out += "NULL";
    }
  }
  return out + "}";
}

std::string ArrayLiteral(const std::vector<std::string>& values) {
  std::string out = "{";
  for (const std::string& value : values) {
    if (out.size() > 1) out += ',';
    AppendQuoted(value, &out);
  }
  return out + "}";
}

void NodeRows::Add(const NodeRecord& n, std::optional<int64_t> script_version) {
  std::vector<std::optional<std::string>> row = {
      n.run_id,
      PgText(n.node),
      std::string(NodeStatusName(n.status)),
      Num(n.attempts),
      PgText(n.output_json),
      std::string(ErrorKindName(n.error_kind)),
      PgText(n.error_message),
      Num(n.started_at),
      Num(n.finished_at),
      script_version ? std::optional<std::string>(Num(*script_version)) : std::nullopt};
  auto [it, added] = index_.try_emplace({n.run_id, n.node}, rows_.size());
  if (added) {
    rows_.push_back(std::move(row));
  } else {
    rows_[it->second] = std::move(row);
  }
}

Statement NodeRows::ToStatement() const {
  if (rows_.size() == 1) return {kUpsertNode, rows_[0]};
  return Columns(kUpsertNodes, rows_, 10);
}

Params NodeRows::LeafArrays() const { return Arrays(rows_, 1, 9); }

void EventRows::Add(const EventRecord& e) {
  rows_.push_back({e.run_id, Num(e.seq), Num(e.ts), PgText(e.node), PgText(e.kind),
                   PgText(e.data_json)});
}

Statement EventRows::ToStatement() const { return Columns(kInsertEvents, rows_, 6); }

Statement EventRows::ToStatementTakingSeqs() const {
  Statement statement = Columns(kInsertEventsTakingSeqs, rows_, 6);
  statement.params.push_back(Num(static_cast<int64_t>(rows_.size())));
  return statement;
}

Params EventRows::LeafArrays() const { return Arrays(rows_, 2, 6); }

}  // namespace keel::pg
