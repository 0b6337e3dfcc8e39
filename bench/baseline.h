#pragma once
// The baseline keel is measured against: the same DAG on a bare
// tbb::flow::graph (one continue_node per node, one edge per dependency),
// each node calling the same no-op Lua function on a per-thread lua_State,
// and, with the store on, the same rows keel writes (two node rows and two
// event rows per node) inserted by one writer thread in batched SQLite
// transactions. Run() is called from one thread at a time.

#include <memory>
#include <string>
#include <vector>

namespace keel::bench {

class RowWriter;

class Baseline {
 public:
  // `db_path` empty: no store.
  explicit Baseline(std::string db_path);
  ~Baseline();
  // Runs the DAG once; returns seconds from start until the last row is committed.
  double Run(const std::vector<std::vector<int>>& deps);

 private:
  std::unique_ptr<RowWriter> writer_;  // null: no store
  int runs_ = 0;
};

}  // namespace keel::bench
