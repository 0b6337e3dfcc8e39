#pragma once
// Many rows of the nodes or events table as one statement: each column
// goes as one PostgreSQL array parameter through unnest, so a batch of any
// size costs one statement (the group commit, a worker's node commit).
//
// Value types; build and use on one thread.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/store.h"
#include "store/postgres/pg_connection.h"

namespace keel::pg {

// `values` as a PostgreSQL array literal; nullopt is NULL.
std::string ArrayLiteral(const std::vector<std::optional<std::string>>& values);
std::string ArrayLiteral(const std::vector<std::string>& values);

// Node records to upsert: the last record of each (run, node), in the order
// each first came, so new rows get their first-insert place (nodes.ord) in
// that order.
class NodeRows {
 public:
  // `script_version` nullopt takes the run's current one.
  void Add(const NodeRecord& node, std::optional<int64_t> script_version);
  bool empty() const { return rows_.empty(); }
  // INSERT ... ON CONFLICT DO UPDATE of every row.
  Statement ToStatement() const;
  // The rows' node, status, attempts, output, error kind, error message,
  // started and finished columns, each an array literal: keel_commit_leaf's
  // node arguments (the run and script version are the function's own).
  Params LeafArrays() const;

 private:
  std::vector<std::vector<std::optional<std::string>>> rows_;
  std::map<std::pair<std::string, std::string>, size_t> index_;  // (run, node) -> row
};

// Events to insert, each with its seq given; their cursors are taken in the
// order added. The statement must run while the transaction holds the
// event-cursor lock (kEventCursorLock).
class EventRows {
 public:
  void Add(const EventRecord& event);
  bool empty() const { return rows_.empty(); }
  size_t size() const { return rows_.size(); }
  Statement ToStatement() const;
  // The same, all of one run, their seqs ignored: they take the last size()
  // seqs of the run's last_seq, which the transaction raised by that many
  // before (keel_escalation_fence).
  Statement ToStatementTakingSeqs() const;
  // The events' ts, node, kind and data columns, each an array literal:
  // keel_commit_leaf's event arguments (it numbers them after the run's
  // last_seq).
  Params LeafArrays() const;

 private:
  std::vector<std::vector<std::optional<std::string>>> rows_;
};

}  // namespace keel::pg
