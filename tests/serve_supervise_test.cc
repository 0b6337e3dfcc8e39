// `keel serve` processes starting and supervising runs: two servers with
// --auto-resume on one database resume each interrupted run exactly once
// (the hand-off is fenced in the database, not by a shared process), and a
// SIGTERM to the server leaves its child runs running to the end, their
// output in DB-logs/RUN_ID.log.

#include <doctest/doctest.h>
#include <httplib.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/gated_run.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 180;
using Clock = std::chrono::steady_clock;

// Starts `keel serve` on a free loopback port; returns it and sets *port.
std::unique_ptr<Subprocess> StartServe(const Sandbox& box, const std::vector<std::string>& extra,
                                       int* port) {
  std::vector<std::string> args = {"serve", "--listen", "127.0.0.1:0", "--workflows", box.dir()};
  args.insert(args.end(), extra.begin(), extra.end());
  auto serve = box.StartDb(args);
  const std::string marker = "listening on http://127.0.0.1:";
  REQUIRE_MESSAGE(serve->WaitForStderr(marker, std::chrono::seconds(30)), serve->Stderr());
  std::string err = serve->Stderr();
  *port = std::stoi(err.substr(err.find(marker) + marker.size()));
  return serve;
}

}  // namespace

TEST_CASE("two keel serve --auto-resume on one database resume each interrupted run once" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string go = box.Path("go");
  std::vector<std::string> ids;
  std::vector<std::string> ledgers;
  for (int i = 0; i < 4; ++i) {
    ledgers.push_back(box.Path("ledger" + std::to_string(i)));
    std::string wf = box.Write("gated" + std::to_string(i) + ".lua", Gated(ledgers[i], go));
    ids.push_back(KilledRun(box, wf, ledgers[i]));
  }
  std::ofstream(go) << "go";
  const std::vector<std::string> flags = {"--auto-resume", "--resume-grace", "0.5s"};
  int port_a = 0;
  int port_b = 0;
  auto a = StartServe(box, flags, &port_a);
  auto b = StartServe(box, flags, &port_b);
  for (const std::string& id : ids) {
    INFO(id);
    REQUIRE(Eventually([&] { return box.Show(id)["status"].Str() == "succeeded"; }));
  }
  std::this_thread::sleep_for(std::chrono::seconds(2));  // a double resume would show by now
  for (size_t i = 0; i < ids.size(); ++i) {
    std::vector<std::string> kinds = Kinds(box.Show(ids[i], /*events=*/true));
    CHECK(Count(kinds, "auto_resumed") == 1);
    CHECK(Count(kinds, "run_resumed") == 1);
    CHECK(Count(Lines(ledgers[i]), "first") == 1);
    CHECK(Count(Lines(ledgers[i]), "last") == 1);
  }
  kill(a->pid(), SIGTERM);
  kill(b->pid(), SIGTERM);
  CHECK(a->Wait(std::chrono::seconds(30)).exit_code == 0);
  CHECK(b->Wait(std::chrono::seconds(30)).exit_code == 0);
}

TEST_CASE("SIGTERM to keel serve leaves its child run running to the end; the child logs "
          "beside the database" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string ledger = box.Path("ledger");
  std::string go = box.Path("go");
  box.Write("gated.lua", Gated(ledger, go));
  int port = 0;
  auto serve = StartServe(box, {}, &port);
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  auto posted = client.Post("/api/v1/runs", R"({"workflow": "gated.lua"})", "application/json");
  REQUIRE(posted);
  INFO(posted->body);
  REQUIRE(posted->status == 201);
  std::string id = Json::Parse(posted->body)["run_id"].Str();
  REQUIRE(Eventually([&] { return Count(Lines(ledger), "gate") == 1; }));

  kill(serve->pid(), SIGTERM);
  ExitInfo stopped = serve->Wait(std::chrono::seconds(30));
  INFO(stopped.Describe());
  CHECK(stopped.exit_code == 0);
  // The child runs on without the server, and finishes once released.
  CHECK(box.Show(id)["status"].Str() == "running");
  std::ofstream(go) << "go";
  REQUIRE(Eventually([&] { return box.Show(id)["status"].Str() == "succeeded"; }));
  std::string log = box.db() + "-logs/" + id + ".log";
  CHECK(std::filesystem::exists(log));
  std::ifstream in(log);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.find("succeeded") != std::string::npos);
}

}  // namespace keel::testing
