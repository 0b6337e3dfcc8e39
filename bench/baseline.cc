#include "bench/baseline.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <sqlite3.h>

#include <chrono>
#include <memory>
#include <oneapi/tbb/enumerable_thread_specific.h>
#include <oneapi/tbb/flow_graph.h>
#include <stdexcept>
#include <thread>

#include "engine/mutex.h"

namespace keel::bench {
namespace {

// A lua_State holding the no-op function, one per thread.
struct LuaSlot {
  LuaSlot() {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_dostring(L, "return function(ctx) end");
    ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  ~LuaSlot() { lua_close(L); }
  lua_State* L;
  int ref;
};

struct Row {
  bool event;
  int node;
  int step;  // 0 started, 1 finished
  double ts;
};

}  // namespace

// Batches rows into SQLite transactions on its own thread. Push() from any thread.
class RowWriter {
 public:
  explicit RowWriter(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) throw std::runtime_error("open");
    Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
         "CREATE TABLE IF NOT EXISTS nodes(run_id TEXT, node TEXT, status TEXT, attempts INT,"
         " output_json TEXT, error_kind TEXT, error_message TEXT, started_at REAL,"
         " finished_at REAL, PRIMARY KEY(run_id, node));"
         "CREATE TABLE IF NOT EXISTS events(run_id TEXT, seq INT, ts REAL, node TEXT,"
         " kind TEXT, data_json TEXT, PRIMARY KEY(run_id, seq));");
    sqlite3_prepare_v2(db_,
                       "INSERT OR REPLACE INTO nodes VALUES(?1,?2,?3,1,?4,'ok','',?5,?6)", -1,
                       &node_stmt_, nullptr);
    sqlite3_prepare_v2(db_, "INSERT INTO events VALUES(?1,?2,?3,?4,?5,'{}')", -1, &event_stmt_,
                       nullptr);
    thread_ = std::thread([this] { Loop(); });
  }
  ~RowWriter() {
    {
      MutexLock lock(&mu_);
      done_ = true;
    }
    cv_.Signal();
    thread_.join();
    sqlite3_finalize(node_stmt_);
    sqlite3_finalize(event_stmt_);
    sqlite3_close(db_);
  }
  void Push(const Row& row) {
    MutexLock lock(&mu_);
    rows_.push_back(row);
    ++pushed_;
    cv_.Signal();
  }
  // Starts a new run's rows.
  void NewRun(const std::string& run_id) {
    MutexLock lock(&mu_);
    run_id_ = run_id;
  }
  // Waits until every row pushed so far is committed.
  void Flush() {
    MutexLock lock(&mu_);
    uint64_t target = pushed_;
    while (committed_ < target) flushed_cv_.Wait(&mu_);
  }

 private:
  void Exec(const char* sql) { sqlite3_exec(db_, sql, nullptr, nullptr, nullptr); }
  void Loop() {
    std::vector<Row> batch;
    std::string run_id;
    for (;;) {
      {
        MutexLock lock(&mu_);
        while (!done_ && rows_.empty()) cv_.Wait(&mu_);
        if (rows_.empty() && done_) return;
        batch.swap(rows_);
        if (run_id != run_id_) seq_ = 0;
        run_id = run_id_;
      }
      Exec("BEGIN IMMEDIATE");
      for (const Row& r : batch) {
        std::string node = "n" + std::to_string(r.node);
        sqlite3_stmt* st = r.event ? event_stmt_ : node_stmt_;
        sqlite3_bind_text(st, 1, run_id.c_str(), -1, SQLITE_STATIC);
        if (r.event) {
          sqlite3_bind_int64(st, 2, ++seq_);
          sqlite3_bind_double(st, 3, r.ts);
          sqlite3_bind_text(st, 4, node.c_str(), -1, SQLITE_TRANSIENT);
          sqlite3_bind_text(st, 5, r.step ? "node_succeeded" : "node_started", -1, SQLITE_STATIC);
        } else {
          sqlite3_bind_text(st, 2, node.c_str(), -1, SQLITE_TRANSIENT);
          sqlite3_bind_text(st, 3, r.step ? "succeeded" : "running", -1, SQLITE_STATIC);
          if (r.step) {
            sqlite3_bind_text(st, 4, "null", -1, SQLITE_STATIC);
          } else {
            sqlite3_bind_null(st, 4);
          }
          sqlite3_bind_double(st, 5, r.ts);
          sqlite3_bind_double(st, 6, r.step ? r.ts : 0);
        }
        sqlite3_step(st);
        sqlite3_reset(st);
      }
      Exec("COMMIT");
      {
        MutexLock lock(&mu_);
        committed_ += batch.size();
      }
      flushed_cv_.SignalAll();
      batch.clear();
    }
  }

  sqlite3* db_ = nullptr;
  sqlite3_stmt* node_stmt_ = nullptr;
  sqlite3_stmt* event_stmt_ = nullptr;
  Mutex mu_;
  CondVar cv_, flushed_cv_;
  std::string run_id_ GUARDED_BY(mu_);
  int64_t seq_ = 0;  // writer thread only
  std::vector<Row> rows_ GUARDED_BY(mu_);
  uint64_t pushed_ GUARDED_BY(mu_) = 0;
  uint64_t committed_ GUARDED_BY(mu_) = 0;
  bool done_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

namespace {

double WallNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Baseline::Baseline(std::string db_path) {
  if (!db_path.empty()) writer_ = std::make_unique<RowWriter>(db_path);
}
Baseline::~Baseline() = default;

double Baseline::Run(const std::vector<std::vector<int>>& deps) {
  static tbb::enumerable_thread_specific<LuaSlot> lua;
  auto start = std::chrono::steady_clock::now();
  RowWriter* writer = writer_.get();
  if (writer) writer->NewRun("base" + std::to_string(++runs_));
  {
    tbb::flow::graph g;
    using Node = tbb::flow::continue_node<tbb::flow::continue_msg>;
    std::vector<std::unique_ptr<Node>> nodes;
    nodes.reserve(deps.size());
    for (size_t i = 0; i < deps.size(); ++i) {
      nodes.push_back(std::make_unique<Node>(g, [writer, i](const tbb::flow::continue_msg&) {
        if (writer) {
          double ts = WallNow();
          writer->Push({false, int(i), 0, ts});
          writer->Push({true, int(i), 0, ts});
        }
        LuaSlot& slot = lua.local();
        lua_rawgeti(slot.L, LUA_REGISTRYINDEX, slot.ref);
        lua_newtable(slot.L);
        lua_pcall(slot.L, 1, 1, 0);
        lua_pop(slot.L, 1);
        if (writer) {
          double ts = WallNow();
          writer->Push({false, int(i), 1, ts});
          writer->Push({true, int(i), 1, ts});
        }
        return tbb::flow::continue_msg();
      }));
      for (int d : deps[i]) tbb::flow::make_edge(*nodes[d], *nodes[i]);
    }
    for (size_t i = 0; i < deps.size(); ++i) {
      if (deps[i].empty()) nodes[i]->try_put(tbb::flow::continue_msg());
    }
    g.wait_for_all();
  }
  if (writer) writer->Flush();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace keel::bench
