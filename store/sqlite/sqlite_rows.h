#pragma once
// How rows of the runs and nodes tables are selected and decoded, shared by
// the SQLite store's reader and writer so both read a run the same way.
// Free functions and constants; safe from any thread.

#include <string_view>
#include <vector>

#include "store/sqlite/sqlite_util.h"
#include "engine/store.h"

namespace keel::sqlite {

// The run columns as RunFromRow reads them, split around `script_text` (the
// fifth, index 4) so listings can select '' in its place:
// head + "script_text" + tail. Columns 0..21.
extern const char kRunColumnsHead[];
extern const char kRunColumnsTail[];
constexpr int kRunColumnCount = 22;

// The node columns as NodeFromRow reads them, of the nodes of run ?1 in
// first-insert order.
extern const char kSelectNodes[];
// The same columns with no condition yet: "SELECT ... FROM nodes ".
extern const char kSelectNodeColumns[];
// The event columns as EventFromRow reads them: "SELECT ... FROM events ".
extern const char kSelectEventColumns[];

void RunFromRow(const Statement& row, RunRecord* run);
// Unknown names read as a failed node with kind error: values written by a
// newer keel are refused at open, so an unknown name means a damaged row.
void NodeFromRow(const Statement& row, NodeRecord* node);
void EventFromRow(const Statement& row, EventRecord* event);

// Every row `stmt` yields, each decoded by `fill(stmt, T*)`; then resets
// the statement. A failed step's status names `what`.
template <typename T, typename Fill>
Result<std::vector<T>> ReadRows(Statement& stmt, std::string_view what, Fill fill) {
  std::vector<T> rows;
  Status status;
  while (stmt.Step(&status, what)) fill(stmt, &rows.emplace_back());
  stmt.Reset();
  if (!status.ok()) return status;
  return rows;
}

}  // namespace keel::sqlite
