// Provider rate limits shared through the database: three `keel run`
// processes on one database file against keel-mock-llm send, together, no
// more than the provider's rpm allows; the same three on three databases
// (each with the whole limit) send about three times as much.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/mock_llm_server.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr double kRpm = 600;   // 10 a second, a burst of 10
constexpr double kWindow = 3;  // seconds counted
constexpr int kProcesses = 3;

// Requests the server saw in the kWindow seconds from the first.
int RequestsInWindow(const Json& log) {
  if (log.Size() == 0) return 0;
  double first = log[0]["ts"].Num();
  for (size_t i = 0; i < log.Size(); ++i) first = std::min(first, log[i]["ts"].Num());
  int count = 0;
  for (size_t i = 0; i < log.Size(); ++i) count += log[i]["ts"].Num() < first + kWindow;
  return count;
}

// Starts kProcesses `keel run`s at once, the pth of workflow file wfs[p],
// `shared` on one database or each on its own (each created first, so that
// the runs do not race to create it).
std::vector<std::unique_ptr<Subprocess>> StartRuns(Sandbox& box,
                                                   const std::vector<std::string>& wfs,
                                                   bool shared) {
  auto db = [&](int p) { return shared ? box.db() : box.Path("own" + std::to_string(p) + ".db"); };
  for (int p = 0; p < kProcesses; ++p) {
    if (p == 0 || !shared) REQUIRE(box.Keel({"runs", "--db", db(p)}).exit_code == 0);
  }
  std::vector<std::unique_ptr<Subprocess>> runs;
  KeelCli cli(KEEL_BIN, box.dir());
  for (int p = 0; p < kProcesses; ++p) runs.push_back(cli.Start({"run", wfs[p], "--db", db(p)}));
  return runs;
}

// Starts kProcesses runs of a map of agents at once, `shared` on one
// database or each on its own, and counts the requests of the first
// kWindow seconds.
int Requests(bool shared) {
  MockLlmServer server(MOCK_LLM_BIN, {});
  Sandbox box(KEEL_BIN);
  std::string wf =
      box.Write("limited.lua",
                "local keel = require 'keel'\n"
                "keel.provider 'llm' { kind = 'openai', base_url = '" +
                    server.url() + "', model = 'mock-1', rpm = " + std::to_string(int(kRpm)) +
                    R"lua( }
return keel.workflow "w" {
  keel.map "m" {
    over = function() local t = {} for i = 1, 200 do t[i] = i end return t end,
    max_concurrency = 200,
    node = keel.agent { provider = "llm", prompt = "item {{index}}" },
  },
}
)lua");
  auto runs = StartRuns(box, {wf, wf, wf}, shared);
  // Wait until the window is over, then stop the runs (they would take
  // 200 x 3 / 10 = 60 s).
  server.WaitForLog([](const Json& log) { return log.Size() > 0; }, std::chrono::seconds(30));
  std::this_thread::sleep_for(std::chrono::milliseconds(int(kWindow * 1000) + 300));
  Json log = server.Log();
  for (auto& run : runs) {
    INFO(run->Stderr());
    CHECK(!run->Exited());  // still going, not failed
    run->Kill();
  }
  return RequestsInWindow(log);
}

// The most requests the server was answering at once, each answered
// `latency` seconds after it came (less a little, for timer slack).
int MostInFlight(const Json& log, double latency) {
  int most = 0;
  for (size_t i = 0; i < log.Size(); ++i) {
    const double t = log[i]["ts"].Num();
    int at = 0;
    for (size_t j = 0; j < log.Size(); ++j) {
      const double start = log[j]["ts"].Num();
      at += start <= t && t < start + latency * 0.9;
    }
    most = std::max(most, at);
  }
  return most;
}

// Starts kProcesses runs of a map of agents of a provider with
// max_concurrency 2, `shared` on one database or each on its own, against a
// server that answers each request after 200 ms; the most requests in
// flight at once, until kWindow seconds after all three have sent one.
int InFlight(bool shared) {
  MockLlmServer server(MOCK_LLM_BIN, {"--latency", "200"});
  Sandbox box(KEEL_BIN);
  // Each process asks for a model of its own, so the log tells them apart.
  std::vector<std::string> wfs;
  for (int p = 0; p < kProcesses; ++p) {
    wfs.push_back(box.Write(
        "bulkhead" + std::to_string(p) + ".lua",
        "local keel = require 'keel'\n"
        "keel.provider 'llm' { kind = 'openai', base_url = '" + server.url() +
            "', model = 'mock-" + std::to_string(p) + R"lua(', max_concurrency = 2 }
return keel.workflow "w" {
  keel.map "m" {
    over = function() local t = {} for i = 1, 100 do t[i] = i end return t end,
    max_concurrency = 100,
    node = keel.agent { provider = "llm", prompt = "item {{index}}" },
  },
}
)lua"));
  }
  auto runs = StartRuns(box, wfs, shared);
  // Apart, counted once every process has sent a request (or a minute went
  // by): on a loaded machine, and under sanitizers, the three start seconds
  // apart. Shared, from the first request: the two slots need not reach
  // every process before the others are done.
  server.WaitForLog(
      [shared](const Json& log) {
        std::set<std::string> models;
        for (size_t i = 0; i < log.Size(); ++i) models.insert(log[i]["model"].Str());
        return !models.empty() && (shared || static_cast<int>(models.size()) == kProcesses);
      },
      std::chrono::seconds(60));
  std::this_thread::sleep_for(std::chrono::milliseconds(int(kWindow * 1000)));
  Json log = server.Log();
  for (auto& run : runs) {
    INFO(run->Stderr());
    CHECK(!run->Exited());
    run->Kill();
  }
  return MostInFlight(log, 0.2);
}

}  // namespace

TEST_CASE("three runs on one database share the provider's max_concurrency; on three they do "
          "not" * doctest::timeout(180)) {
  const int shared = InFlight(true);
  const int apart = InFlight(false);
  MESSAGE("most requests in flight at max_concurrency 2: shared " << shared << ", apart "
                                                                  << apart);
  CHECK(shared <= 2);
  CHECK(shared >= 1);
  CHECK(apart > 2);
}

TEST_CASE("three runs on one database share the provider's rpm; on three they do not" *
          doctest::timeout(180)) {
  const int shared = Requests(true);
  const int apart = Requests(false);
  MESSAGE("requests in " << kWindow << " s at rpm " << kRpm << ": shared " << shared << ", apart "
                         << apart);
  // rate x window + burst, and at most a chunk (a quarter second) held by
  // each process.
  const double bound = kRpm / 60 * kWindow + kRpm / 60 + kProcesses * kRpm / 60 / 4;
  CHECK(shared <= bound);
  CHECK(shared >= kRpm / 60 * kWindow * 0.6);  // the limit is used, not starved
  CHECK(apart > bound);
}

}  // namespace keel::testing
