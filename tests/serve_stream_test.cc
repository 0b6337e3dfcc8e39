// The live event stream (service/event_stream.h) over real HTTP on
// loopback: two `keel run` processes write one database while a client
// reads and reconnects with Last-Event-ID; every event arrives once, in
// cursor order. Also ?run=, ?after=, bad requests, heartbeats, a stalled
// client, and Stop.

#include <arpa/inet.h>
#include <signal.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "store/sqlite/sqlite_store.h"
#include "service/event_stream.h"
#include "tests/sse_client.h"
#include "tests/support/json.h"
#include "tests/support/sandbox.h"
#include "tests/support/serve_process.h"
#include "tests/support/sqlite_db.h"

namespace keel::testing {
namespace {

using service::EventStream;
using service::EventStreamOptions;
using namespace std::chrono_literals;

// Items that each sleep a little, so the run writes events for a while.
constexpr char kBurst[] = R"lua(local keel = require "keel"
return keel.workflow "burst" {
  keel.map "m" {
    over = function() local t = {} for i = 1, 120 do t[i] = i end return t end,
    node = keel.fn { run = function() keel.sleep(0.003) end },
  },
}
)lua";

// A store, the stream component and an HTTP server on a free loopback port.
struct Server {
  explicit Server(const std::string& db, EventStreamOptions options) {
    SqliteStoreOptions store_options;
    auto opened = SqliteStore::Open(db, store_options);
    REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    store = std::move(opened).value();
    stream = std::make_unique<EventStream>(store.get(), options);
    http.new_task_queue = [] { return new httplib::ThreadPool(16); };
    http.set_write_timeout(1, 0);
    stream->Register(http);
    stream->Start();
    port = http.bind_to_any_port("127.0.0.1");
    REQUIRE(port > 0);
    thread = std::thread([this] { http.listen_after_bind(); });
  }
  ~Server() {
    stream->Stop();
    http.stop();
    thread.join();
  }

  std::unique_ptr<SqliteStore> store;
  std::unique_ptr<EventStream> stream;
  httplib::Server http;
  int port = 0;
  std::thread thread;
};

EventStreamOptions Fast() {
  EventStreamOptions options;
  options.heartbeat_s = 0.2;
  options.poll_s = 0.005;
  return options;
}

// Creates the database (schema and all) with one quick run.
void CreateDb(const Sandbox& box) {
  std::string wf = box.Write("one.lua", R"lua(local keel = require "keel"
return keel.workflow "one" { keel.fn "a" { run = function() return 1 end } }
)lua");
  REQUIRE(box.KeelDb({"run", wf}).exit_code == 0);
}

// Every (cursor, run id, seq) in the events table after `after`.
std::vector<std::vector<std::string>> TableAfter(const std::string& db, int64_t after) {
  SqliteDb raw(db, false);
  return raw.Query("SELECT cursor, run_id, seq FROM events WHERE cursor > ?1 ORDER BY cursor",
                   {std::to_string(after)});
}

TEST_CASE("two writers, a client reconnecting with Last-Event-ID: every event once, in order" *
          doctest::timeout(300)) {
  Sandbox box(KEEL_BIN);
  CreateDb(box);
  Server server(box.db(), Fast());
  const int64_t start = *server.store->LastEventCursor();
  std::string wf = box.Write("burst.lua", kBurst);
  auto a = box.StartDb({"run", wf, "--workers", "4"});
  auto b = box.StartDb({"run", wf, "--workers", "4"});

  SseClient client("127.0.0.1", server.port);
  std::vector<SseMessage> got;
  int64_t last = start;
  int connections = 0;
  const auto deadline = std::chrono::steady_clock::now() + 90s;
  bool writers_done = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!writers_done && a->Exited() && b->Exited()) writers_done = true;
    const int64_t newest = *server.store->LastEventCursor();
    if (writers_done && last >= newest) break;
    // Each connection takes a few events and hangs up; resumes alternate
    // between the header and ?after=.
    ++connections;
    int take = 17 + connections % 23;
    httplib::Headers headers;
    std::string path = "/api/v1/stream";
    if (connections % 3 == 0) {
      path += "?after=" + std::to_string(last);
    } else {
      headers.emplace("Last-Event-ID", std::to_string(last));
    }
    auto stop_at = std::chrono::steady_clock::now() + 2s;
    int status = client.Read(path, headers, [&](const SseMessage& m) {
      got.push_back(m);
      last = m.id;
      return --take > 0 && std::chrono::steady_clock::now() < stop_at;
    });
    REQUIRE(status == 200);
  }
  REQUIRE(a->Wait(30s).exit_code == 0);
  REQUIRE(b->Wait(30s).exit_code == 0);
  MESSAGE(connections << " connections, " << got.size() << " events");
  CHECK(connections > 5);

  auto table = TableAfter(box.db(), start);
  REQUIRE(table.size() > 400);  // both runs' events
  REQUIRE(got.size() == table.size());
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    REQUIRE(std::to_string(got[i].id) == table[i][0]);
    Json event = Json::Parse(got[i].data);
    CHECK(event["run_id"].Str() == table[i][1]);
    CHECK(std::to_string(event["seq"].Int()) == table[i][2]);
    CHECK(!event["kind"].Str().empty());
  }

  {
    INFO("?run= streams one run's events, catching up from the cursor given");
    const std::string run_id = table.back()[1];
    size_t expected = 0;
    for (const auto& row : table) expected += row[1] == run_id ? 1 : 0;
    std::vector<SseMessage> of_run;
    int status = client.Read("/api/v1/stream?run=" + run_id + "&after=0", {},
                             [&](const SseMessage& m) {
                               of_run.push_back(m);
                               return of_run.size() < expected;
                             });
    CHECK(status == 200);
    REQUIRE(of_run.size() == expected);
    for (size_t i = 0; i < of_run.size(); ++i) {
      CHECK(Json::Parse(of_run[i].data)["run_id"].Str() == run_id);
      if (i > 0) CHECK(of_run[i].id > of_run[i - 1].id);
    }
  }
  {
    INFO("bad requests get JSON errors");
    httplib::Client http("127.0.0.1", server.port);
    auto bad = http.Get("/api/v1/stream", {{"Last-Event-ID", "12x"}});
    REQUIRE(bad);
    CHECK(bad->status == 400);
    CHECK(Json::Parse(bad->body)["error"].Str().find("Last-Event-ID") != std::string::npos);
    auto negative = http.Get("/api/v1/stream?after=-3");
    REQUIRE(negative);
    CHECK(negative->status == 400);
    auto unknown = http.Get("/api/v1/stream?run=no-such-run");
    REQUIRE(unknown);
    CHECK(unknown->status == 404);
    CHECK(Json::Parse(unknown->body)["error"].Str().find("no-such-run") != std::string::npos);
  }
  {
    INFO("a cursor the database never gave continues from its end");
    // The connections above end once the server notices (at a heartbeat).
    for (int i = 0; i < 500 && server.stream->ClientCount() > 0; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(server.stream->ClientCount() == 0);
    const int64_t newest = *server.store->LastEventCursor();
    std::atomic<bool> got_event{false};
    std::thread reader([&] {
      client.Read("/api/v1/stream", {{"Last-Event-ID", "999999999"}}, [&](const SseMessage& m) {
        got_event = m.id == newest + 1;
        return false;
      });
    });
    // Wait until it is connected, then write one event.
    for (int i = 0; i < 200 && server.stream->ClientCount() == 0; ++i) std::this_thread::sleep_for(10ms);
    server.store->AppendEvent({"extra", 0, 1, "", "note", "{}"});
    REQUIRE(server.store->Flush().ok());
    reader.join();
    CHECK(got_event);
  }
}

TEST_CASE("heartbeats keep an idle stream open; Stop ends it" * doctest::timeout(60)) {
  Sandbox box(KEEL_BIN);
  CreateDb(box);
  Server server(box.db(), Fast());
  SseClient client("127.0.0.1", server.port);
  std::atomic<int> keepalives{0};
  std::atomic<bool> ended{false};
  std::thread reader([&] {
    client.Read(
        "/api/v1/stream", {}, [](const SseMessage&) { return true; },
        [&](const std::string& comment) {
          if (comment == ": keepalive") ++keepalives;
        });
    ended = true;
  });
  for (int i = 0; i < 500 && keepalives < 3; ++i) std::this_thread::sleep_for(10ms);
  CHECK(keepalives >= 3);
  CHECK_FALSE(ended);
  const auto stop = std::chrono::steady_clock::now();
  server.stream->Stop();
  reader.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stop).count();
  CHECK(ended);
  CHECK(seconds < 2);
}

// Connects and asks for the stream from cursor 0, then never reads.
int StalledClient(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int small = 4096;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  std::string request =
      "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nLast-Event-ID: 0\r\n\r\n";
  REQUIRE(write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size()));
  return fd;
}

TEST_CASE("a stalled client holds no one back and is disconnected" * doctest::timeout(90)) {
  Sandbox box(KEEL_BIN);
  CreateDb(box);
  EventStreamOptions options = Fast();
  options.max_queued = 1000;
  Server server(box.db(), options);
  int stalled = StalledClient(server.port);
  for (int i = 0; i < 200 && server.stream->ClientCount() < 1; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(server.stream->ClientCount() == 1);

  const int64_t start = *server.store->LastEventCursor();
  constexpr int kEvents = 6000;
  std::vector<SseMessage> got;
  SseClient client("127.0.0.1", server.port);
  int status = -1;
  int connections = 0;
  std::thread reader([&] {
    // A reader that keeps up may still be let go in a burst; it resumes.
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (got.size() < kEvents && std::chrono::steady_clock::now() < deadline) {
      ++connections;
      int64_t last = got.empty() ? start : got.back().id;
      status = client.Read("/api/v1/stream", {{"Last-Event-ID", std::to_string(last)}},
                           [&](const SseMessage& m) {
                             got.push_back(m);
                             return got.size() < kEvents;
                           });
      if (status != 200) break;
    }
  });
  for (int i = 0; i < 200 && server.stream->ClientCount() < 2; ++i) std::this_thread::sleep_for(10ms);
  // About 6 MB: far more than the stalled client's socket buffers hold.
  const std::string data = "{\"pad\":\"" + std::string(1000, 'x') + "\"}";
  for (int i = 0; i < kEvents; ++i) {
    server.store->AppendEvent({"bulk", 0, 1, "n", "note", data});
    if (i % 100 == 99) REQUIRE(server.store->Flush().ok());
  }
  REQUIRE(server.store->Flush().ok());
  reader.join();
  CHECK(status == 200);
  MESSAGE("the reader that keeps up connected " << connections << " times");
  REQUIRE(got.size() == kEvents);
  for (int i = 0; i < kEvents; ++i) REQUIRE(got[i].id == start + i + 1);
  // The stalled one fell behind and was let go (after the write timeout).
  for (int i = 0; i < 500 && server.stream->ClientCount() > 0; ++i) std::this_thread::sleep_for(10ms);
  CHECK(server.stream->ClientCount() == 0);
  close(stalled);
}

TEST_CASE("keel serve streams the history from a cursor and new runs live, and /metrics counts them; "
          "SIGTERM ends open streams" *
          doctest::timeout(120)) {
  Sandbox box(KEEL_BIN);
  CreateDb(box);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  std::vector<SseMessage> got;
  std::atomic<bool> finished{false};
  std::thread reader([&] {
    SseClient client("127.0.0.1", serve.port());
    client.Read("/api/v1/stream", {{"Last-Event-ID", "0"}}, [&](const SseMessage& m) {
      got.push_back(m);
      // The second run's end.
      return !(Json::Parse(m.data)["kind"].Str() == "run_finished" &&
               std::count_if(got.begin(), got.end(), [](const SseMessage& e) {
                 return Json::Parse(e.data)["kind"].Str() == "run_finished";
               }) == 2);
    });
    finished = true;
  });
  ExitInfo second = box.KeelDb({"run", box.Path("one.lua")});
  REQUIRE(second.exit_code == 0);
  reader.join();
  auto table = TableAfter(box.db(), 0);
  REQUIRE(got.size() == table.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(std::to_string(got[i].id) == table[i][0]);
  CHECK(Json::Parse(got.back().data)["run_id"].Str() == RunIdFromStderr(second.err));

  auto metrics = serve.Client()->Get("/metrics");
  REQUIRE(metrics);
  CHECK(metrics->status == 200);
  CHECK(metrics->body.find("\nkeel_runs_started_total 2\n") != std::string::npos);
  CHECK(metrics->body.find("\nkeel_runs_finished_total{status=\"succeeded\"} 2\n") !=
        std::string::npos);

  // An idle stream stays open until the server stops, then ends at once.
  std::atomic<bool> ended{false};
  std::thread idle([&] {
    SseClient client("127.0.0.1", serve.port());
    client.Read("/api/v1/stream", {}, [](const SseMessage&) { return true; });
    ended = true;
  });
  std::this_thread::sleep_for(300ms);
  CHECK_FALSE(ended);
  const auto stop = std::chrono::steady_clock::now();
  kill(serve.process().pid(), SIGTERM);
  ExitInfo exit = serve.process().Wait(20s);
  idle.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - stop).count();
  CHECK(exit.exit_code == 0);
  CHECK(ended);
  CHECK(seconds < 5);
}

}  // namespace
}  // namespace keel::testing
