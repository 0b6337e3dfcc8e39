#pragma once
// How rows of the runs and nodes tables are selected and decoded, shared by
// the SQLite store's reader and writer so both read a run the same way.
// Free functions and constants; safe from any thread.

#include "engine/sqlite_util.h"
#include "engine/store.h"

namespace keel::sqlite {

// The run columns as RunFromRow reads them, split around `script_text` (the
// fifth, index 4) so listings can select '' in its place:
// head + "script_text" + tail. Columns 0..17.
extern const char kRunColumnsHead[];
extern const char kRunColumnsTail[];
constexpr int kRunColumnCount = 18;

// The node columns as NodeFromRow reads them, of the nodes of run ?1 in
// first-insert order.
extern const char kSelectNodes[];

void RunFromRow(const Statement& row, RunRecord* run);
// Unknown names read as a failed node with kind error: values written by a
// newer keel are refused at open, so an unknown name means a damaged row.
void NodeFromRow(const Statement& row, NodeRecord* node);

}  // namespace keel::sqlite
