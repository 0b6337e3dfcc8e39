// The live stream and the metrics of `keel serve` (service/event_stream.h,
// service/metrics.h) over real HTTP on loopback:
//  - SSE: 100 connected clients; a writer (its own store, as another process
//    would be) commits events carrying the time they were appended; each
//    client notes when each arrives. Prints the median and p99 of append to
//    delivery over every (event, client) (target: within 50 ms).
//  - /metrics on a database of 1,000,000 events and 10,000 runs: the first
//    scrape (reads the history) and steady state (sequential, and 100
//    concurrent connections), against the same store reads made directly.
//
//   stream_bench            100 clients, 200 events; 1,000,000 events for /metrics
//   stream_bench --quick    20 clients, 50 events; 100,000 events (ctest smoke test)

#include <httplib.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "engine/clock.h"
#include "store/sqlite/sqlite_store.h"
#include "service/event_stream.h"
#include "service/metrics.h"
#include "tests/sse_client.h"

namespace keel::bench {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

std::unique_ptr<SqliteStore> Open(const std::string& path) {
  auto store = SqliteStore::Open(path, SqliteStoreOptions{});
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(store).value();
}

// An HTTP server on a free loopback port with `threads` workers.
struct Http {
  explicit Http(int threads) {
    server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    // As a server for many keep-alive clients would be set up: no Nagle
    // delay between a response's header and body writes.
    server.set_tcp_nodelay(true);
    server.set_keep_alive_max_count(100000);
  }
  void Listen() {
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~Http() {
    server.stop();
    if (thread.joinable()) thread.join();
  }
  httplib::Server server;
  int port = 0;
  std::thread thread;
};

void StreamLatency(const fs::path& dir, int clients, int events) {
  const std::string db = (dir / "stream.db").string();
  auto store = Open(db);  // the server's
  auto writer = Open(db);  // the writer's: another connection, as another process
  service::EventStreamOptions options;
  service::EventStream stream(store.get(), options);
  Http http(clients + 8);
  stream.Register(http.server);
  stream.Start();
  http.Listen();

  std::vector<std::vector<double>> latencies(clients);
  std::vector<std::thread> readers;
  for (int c = 0; c < clients; ++c) {
    readers.emplace_back([&, c] {
      keel::testing::SseClient client("127.0.0.1", http.port);
      int seen = 0;
      client.Read(
          "/api/v1/stream", {},
          [&](const keel::testing::SseMessage& m) {
            const int64_t now = NowNs();
            size_t at = m.data.find("\"t\":");
            if (at != std::string::npos) {
              int64_t sent = std::stoll(m.data.substr(at + 4));
              latencies[c].push_back(static_cast<double>(now - sent) / 1e6);
            }
            return ++seen < events;
          },
          nullptr, std::chrono::seconds(120));
    });
  }
  while (stream.ClientCount() < static_cast<size_t>(clients)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // every client is live
  for (int i = 0; i < events; ++i) {
    writer->AppendEvent(
        {"bench-run", 0, 1, "n", "note", "{\"t\":" + std::to_string(NowNs()) + "}"});
    if (!writer->Flush().ok()) std::exit(1);  // committed
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (auto& t : readers) t.join();
  std::vector<double> all;
  size_t complete = 0;
  for (const auto& l : latencies) {
    all.insert(all.end(), l.begin(), l.end());
    complete += l.size() == static_cast<size_t>(events) ? 1 : 0;
  }
  stream.Stop();
  std::printf("SSE: %d clients, %d events committed 20 ms apart; %zu/%d clients got all\n",
              clients, events, complete, clients);
  std::printf("  append+commit to delivery: median %.2f ms, p99 %.2f ms, max %.2f ms  "
              "(target: within 50 ms)\n",
              Percentile(all, 0.5), Percentile(all, 0.99), Percentile(all, 1.0));
}

// A database of `runs` runs with `events` events among them, written with
// plain SQL (keel's schema, made by opening a store first).
void Populate(const std::string& db, int runs, int events) {
  Open(db).reset();
  sqlite3* raw = nullptr;
  sqlite3_open(db.c_str(), &raw);
  const std::string sql =
      "BEGIN;"
      "WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i < " +
      std::to_string(runs - 1) +
      ") INSERT INTO runs (id, workflow, script_path, script_sha256, script_text, params_json, "
      "status, owner_pid, owner_host, owner_start, heartbeat, created_at, updated_at, "
      "finished_at, node_count) SELECT printf('run-%06d', i), 'wf', '/wf.lua', '00', '', '{}', "
      "CASE i % 10 WHEN 0 THEN 'failed' ELSE 'succeeded' END, 1, 'h', 1, 1, 1.7e9 + i, "
      "1.7e9 + i, 1.7e9 + i + 1, 10 FROM r;"
      "WITH RECURSIVE e(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM e WHERE i < " +
      std::to_string(events - 1) + ") INSERT INTO events (run_id, seq, ts, node, kind, data_json) "
      "SELECT printf('run-%06d', i % " + std::to_string(runs) + "), i / " + std::to_string(runs) +
      " + 1, 1.7e9 + i, 'n' || (i % 10), CASE i % 5 "
      "WHEN 0 THEN 'node_started' WHEN 1 THEN 'node_succeeded' WHEN 2 THEN 'llm_call' "
      "WHEN 3 THEN 'attempt_failed' ELSE 'retry_scheduled' END, CASE i % 5 "
      "WHEN 1 THEN '{\"seconds\":0.25,\"attempts\":1}' "
      "WHEN 2 THEN '{\"provider\":\"p\",\"model\":\"m\",\"prompt_tokens\":120,"
      "\"completion_tokens\":40,\"cost\":0.0001,\"seconds\":0.8,\"outcome\":\"ok\"}' "
      "WHEN 3 THEN '{\"attempt\":1,\"kind\":\"transient\",\"message\":\"reset\"}' "
      "ELSE '{\"attempt\":1}' END FROM e;"
      "COMMIT;";
  char* error = nullptr;
  if (sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::fprintf(stderr, "populating: %s\n", error ? error : "?");
    std::exit(1);
  }
  sqlite3_close(raw);
}

void MetricsLatency(const fs::path& dir, int events, int concurrency, int requests) {
  const std::string db = (dir / "metrics.db").string();
  const auto populate = Clock::now();
  Populate(db, 10000, events);
  std::printf("\n/metrics: %d events, 10000 runs (populated in %.1f s)\n", events,
              Ms(Clock::now() - populate) / 1000);
  auto store = Open(db);
  service::Metrics metrics(store.get(), SystemClock());
  Http http(concurrency + 8);
  metrics.Register(http.server);
  http.Listen();
  httplib::Client client("127.0.0.1", http.port);
  client.set_read_timeout(300, 0);
  auto t0 = Clock::now();
  auto first = client.Get("/metrics");
  const double first_ms = Ms(Clock::now() - t0);
  if (!first || first->status != 200) {
    std::fprintf(stderr, "first scrape failed\n");
    std::exit(1);
  }
  std::printf("  first scrape (reads the history):  %.0f ms, %zu bytes\n", first_ms,
              first->body.size());
  std::vector<double> sequential;
  for (int i = 0; i < 200; ++i) {
    t0 = Clock::now();
    auto r = client.Get("/metrics");
    sequential.push_back(Ms(Clock::now() - t0));
    if (!r || r->status != 200) std::exit(1);
  }
  std::vector<double> direct;
  for (int i = 0; i < 200; ++i) {
    t0 = Clock::now();
    auto e = store->ReadEventsAfter(*store->LastEventCursor(), "", 5000);
    auto c = store->CountState();
    auto b = store->ListBreakers();
    direct.push_back(Ms(Clock::now() - t0));
    if (!e.ok() || !c.ok() || !b.ok()) std::exit(1);
  }
  std::printf("  steady state, one client:          median %.2f ms, p99 %.2f ms\n",
              Percentile(sequential, 0.5), Percentile(sequential, 0.99));
  std::printf("  the same store reads, direct:      median %.2f ms (ratio %.1fx)\n",
              Percentile(direct, 0.5), Percentile(sequential, 0.5) / Percentile(direct, 0.5));
  std::vector<std::vector<double>> per(concurrency);
  std::vector<std::thread> threads;
  // Each client connects and makes one request first, untimed: the
  // connection's setup (cpp-httplib listens with a backlog of 5, so 100
  // connecting at once see SYN retries) is not what is measured.
  std::atomic<int> connected{0};
  Clock::time_point timed_start;
  for (int c = 0; c < concurrency; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client own("127.0.0.1", http.port);
      own.set_read_timeout(60, 0);
      own.set_keep_alive(true);
      own.set_tcp_nodelay(true);
      own.Get("/metrics");
      ++connected;
      while (connected.load() < concurrency) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      for (int i = 0; i < requests; ++i) {
        auto s = Clock::now();
        auto r = own.Get("/metrics");
        if (r && r->status == 200) per[c].push_back(Ms(Clock::now() - s));
      }
    });
  }
  while (connected.load() < concurrency) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  timed_start = Clock::now();
  for (auto& t : threads) t.join();
  const double seconds = Ms(Clock::now() - timed_start) / 1000;
  std::vector<double> all;
  for (const auto& p : per) all.insert(all.end(), p.begin(), p.end());
  std::printf("  %d concurrent connections:        median %.2f ms, p99 %.2f ms, %.0f requests/s "
              "(%zu ok)\n",
              concurrency, Percentile(all, 0.5), Percentile(all, 0.99),
              static_cast<double>(all.size()) / seconds, all.size());
}

int Main(bool quick) {
  fs::path dir = fs::temp_directory_path() / ("keel-stream-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  StreamLatency(dir, quick ? 20 : 100, quick ? 50 : 200);
  MetricsLatency(dir, quick ? 100000 : 1000000, quick ? 10 : 100, quick ? 5 : 20);
  fs::remove_all(dir);
  return 0;
}

}  // namespace
}  // namespace keel::bench

int main(int argc, char** argv) {
  bool quick = argc == 2 && std::strcmp(argv[1], "--quick") == 0;
  return keel::bench::Main(quick);
}
