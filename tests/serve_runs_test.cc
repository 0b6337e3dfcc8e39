// Starting and supervising runs over real HTTP on loopback and real `keel`
// processes: POST runs (path refusals, params, errors), the --max-runs
// queue across a restart, resume from, fork with params, auto-resume after
// kill -9 (bounded by --max-resumes), a parked run woken by `keel signal`
// from another process or by its durable timer, and two servers on one
// database resuming each interrupted run once.

#include <doctest/doctest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/process_owner.h"
#include "store/sqlite/sqlite_store.h"
#include "service/run_start_api.h"
#include "service/service_options.h"
#include "tests/support/gated_run.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 180;
using Clock = std::chrono::steady_clock;

// A RunStartApi over the sandbox's database, served on a loopback port.
class TestServer {
 public:
  TestServer(const Sandbox& box, std::function<void(service::ServiceOptions&)> tweak = {},
             std::chrono::milliseconds check_timeout = std::chrono::seconds(20)) {
    options_.db = box.db();
    options_.keel_path = KEEL_BIN;
    options_.workflows = box.dir();
    options_.resume_grace_s = 0.5;
    if (tweak) tweak(options_);
    auto store = SqliteStore::Open(options_.db, {});
    REQUIRE_MESSAGE(store.ok(), store.status().message());
    store_ = std::move(store).value();
    api_ = std::make_unique<service::RunStartApi>(options_, store_.get());
    api_->set_check_timeout(check_timeout);
    api_->Register(http_);
    port_ = http_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    api_->Start();
  }
  ~TestServer() {
    api_->Stop();
    http_.stop();
    thread_.join();
  }

  // POST `path` with `body`; returns status and parsed body (null if none).
  std::pair<int, Json> Post(const std::string& path, const std::string& body) {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(60, 0);
    auto result = client.Post(path.c_str(), body, "application/json");
    REQUIRE_MESSAGE(result, "no answer to POST " << path);
    Json doc = result->body.empty() ? Json::Null() : Json::Parse(result->body);
    return {result->status, doc};
  }

  service::RunStartApi& api() { return *api_; }
  Store* store() { return store_.get(); }

 private:
  service::ServiceOptions options_;
  std::unique_ptr<SqliteStore> store_;
  std::unique_ptr<service::RunStartApi> api_;
  httplib::Server http_;
  int port_ = 0;
  std::thread thread_;
};

std::string StatusOf(const Sandbox& box, const std::string& id) {
  return box.Show(id)["status"].Str();
}

const char kApproval[] = R"lua(local keel = require "keel"
return keel.workflow "approve" {
  keel.fn "draft" { run = function() return "text" end },
  keel.wait "approval" { after = { "draft" }, signal = "approve", timeout = 3600 },
  keel.fn "publish" { after = { "approval" }, run = function(ctx)
    return { approved = ctx.deps.approval.ok } end },
}
)lua";

const char kTimer[] = R"lua(local keel = require "keel"
return keel.workflow "timer" {
  keel.wait "cool" { delay = 2 },
  keel.fn "after" { after = { "cool" }, run = function() return "done" end },
}
)lua";

}  // namespace

TEST_CASE("POST runs refuses bad paths, bodies and params with JSON errors" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("ok.lua", kApproval);
  box.Write("notes.txt", "hello");
  box.Write("broken.lua",
            "local keel = require \"keel\"\nreturn keel.workflow \"b\" {\n"
            "  keel.fn \"x\" { after = { \"nope\" }, run = function() end },\n}\n");
  std::filesystem::create_directories(box.Path("sub"));
  box.Write("sub/inner.lua", kTimer);
  // A symlink and a symlinked directory that lead outside the directory.
  Sandbox outside(KEEL_BIN);
  std::string secret = outside.Write("secret.lua", kTimer);
  std::filesystem::create_symlink(secret, box.Path("escape.lua"));
  std::filesystem::create_directory_symlink(outside.dir(), box.Path("elsewhere"));
  TestServer server(box);

  struct Case {
    std::string body;
    int status;
    std::string says;
  };
  const std::vector<Case> cases = {
      {R"({"workflow": "/etc/passwd.lua"})", 400, "absolute"},
      {R"({"workflow": "../x.lua"})", 400, ".."},
      {R"({"workflow": "sub/../../x.lua"})", 400, ".."},
      {R"({"workflow": "notes.txt"})", 400, "not a .lua"},
      {R"({"workflow": "escape.lua"})", 400, "outside"},
      {R"({"workflow": "elsewhere/secret.lua"})", 400, "outside"},
      {R"({"workflow": "missing.lua"})", 404, "missing.lua"},
      {R"({"workflow": "ok\u0000.lua"})", 400, "NUL"},
      {R"({"workflow": 7})", 400, "workflow"},
      {R"(not json)", 400, "JSON object"},
      {R"({"workflow": "ok.lua", "params": [1]})", 400, "params"},
      {R"({"workflow": "ok.lua", "params": {"nope": 1}})", 400, "nope"},
      {R"({"workflow": "broken.lua"})", 400, "broken.lua:3"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.body);
    auto [status, body] = server.Post("/api/v1/runs", c.body);
    CHECK(status == c.status);
    CHECK(body["error"].Str().find(c.says) != std::string::npos);
  }
  CHECK(box.Runs().Size() == 0);

  // A file in a subdirectory is fine.
  auto [status, body] = server.Post("/api/v1/runs", R"({"workflow": "sub/inner.lua"})");
  CHECK(status == 201);
  CHECK(body["status"].Str() == "queued");
  CHECK(!body["run_id"].Str().empty());
}

TEST_CASE("--max-runs 2: five POSTed runs, never more than two at once, queued ones survive a "
          "restart" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string ledger = box.Path("ledger");
  std::string go = box.Path("go");
  box.Write("gated.lua", Gated(ledger, go));
  std::vector<std::string> ids;
  {
    TestServer server(box, [](service::ServiceOptions& o) { o.max_runs = 2; });
    for (int i = 0; i < 5; ++i) {
      auto [status, body] = server.Post(
          "/api/v1/runs", R"({"workflow": "gated.lua", "params": {"tag": "t)" +
                              std::to_string(i) + R"("}})");
      REQUIRE(status == 201);
      ids.push_back(body["run_id"].Str());
    }
    // Two start; three stay queued in the database.
    REQUIRE(Eventually([&] { return Count(Lines(ledger), "gate") == 2; }));
    std::this_thread::sleep_for(std::chrono::seconds(1));
    CHECK(server.api().children().Active() == 2);
    CHECK(box.Runs({"--status", "queued"}).Size() == 3);
    CHECK(box.Runs({"--status", "running"}).Size() == 2);
  }
  // The server is gone; its two children run on (their own session).
  CHECK(box.Runs({"--status", "running"}).Size() == 2);
  CHECK(box.Runs({"--status", "queued"}).Size() == 3);
  {
    TestServer server(box, [](service::ServiceOptions& o) { o.max_runs = 2; });
    std::ofstream(go) << "go";
    int most = 0;
    bool all = Eventually([&] {
      most = std::max(most, server.api().children().Active());
      most = std::max(most, static_cast<int>(box.Runs({"--status", "running"}).Size()));
      for (const std::string& id : ids) {
        if (StatusOf(box, id) != "succeeded") return false;
      }
      return true;
    });
    CHECK(all);
    CHECK(most <= 2);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    Json show = box.Show(ids[i], /*events=*/true);
    CHECK(NodeEntry(show["nodes"], "last")["output"].Str() == std::string("t") + std::to_string(i));
    CHECK(Count(Kinds(show), "run_started") == 1);
  }
  CHECK(Count(Lines(ledger), "first") == 5);
  CHECK(Count(Lines(ledger), "last") == 5);
}

TEST_CASE("auto-resume after kill -9: the run finishes, no finished node runs twice" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string ledger = box.Path("ledger");
  std::string go = box.Path("go");
  std::string wf = box.Write("gated.lua", Gated(ledger, go));
  std::string id = KilledRun(box, wf, ledger);
  std::ofstream(go) << "go";
  TestServer server(box, [](service::ServiceOptions& o) { o.auto_resume = true; });
  REQUIRE(Eventually([&] { return StatusOf(box, id) == "succeeded"; }));
  Json show = box.Show(id, /*events=*/true);
  std::vector<std::string> kinds = Kinds(show);
  CHECK(Count(kinds, "auto_resumed") == 1);
  CHECK(Count(kinds, "run_resumed") == 1);
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    if (show["events"][i]["kind"].Str() != "auto_resumed") continue;
    CHECK(show["events"][i]["data"]["count"].Int() == 1);
    CHECK(show["events"][i]["data"]["reason"].Str() == "owner_died");
  }
  std::vector<std::string> ran = Lines(ledger);
  CHECK(Count(ran, "first") == 1);  // recorded finished before the kill: kept
  CHECK(Count(ran, "last") == 1);
}

TEST_CASE("without --auto-resume a dead owner's run is left alone; --max-resumes bounds it" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string ledger = box.Path("ledger");
  std::string go = box.Path("go");
  std::string wf = box.Write("gated.lua", Gated(ledger, go));
  std::string id = KilledRun(box, wf, ledger);
  {
    TestServer server(box);
    std::this_thread::sleep_for(std::chrono::seconds(2));
    CHECK(Count(Kinds(box.Show(id, true)), "auto_resumed") == 0);
  }
  // max 1: resumed once, killed again, then left alone with one note.
  TestServer server(box, [](service::ServiceOptions& o) {
    o.auto_resume = true;
    o.max_resumes = 1;
  });
  REQUIRE(Eventually([&] { return Count(Lines(ledger), "gate") >= 2; }));
  REQUIRE(Eventually([&] {
    Json show = box.Show(id);
    return show["status"].Str() == "running";
  }));
  // Kill the child that resumed it (the run's owner now).
  auto run = server.store()->GetRun(id);
  REQUIRE(Eventually([&] {
    run = server.store()->GetRun(id);
    return run.ok() && run->owner.pid != getpid() && run->owner.pid > 0;
  }));
  kill(static_cast<pid_t>(run->owner.pid), SIGKILL);
  REQUIRE(Eventually([&] { return Count(Kinds(box.Show(id, true)), "auto_resume_limit") == 1; }));
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::vector<std::string> kinds = Kinds(box.Show(id, true));
  CHECK(Count(kinds, "auto_resumed") == 1);
  CHECK(Count(kinds, "auto_resume_limit") == 1);
  CHECK(Count(Lines(ledger), "gate") == 2);
}

TEST_CASE("a parked run resumes when `keel signal` comes from another process, and on its "
          "timer" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string approve = box.Write("approve.lua", kApproval);
  std::string timer = box.Write("timer.lua", kTimer);
  ExitInfo parked = box.KeelDb({"run", approve});
  REQUIRE(parked.exit_code == 4);
  std::string signal_id = RunIdFromStderr(parked.err);
  ExitInfo timed = box.KeelDb({"run", timer});
  REQUIRE(timed.exit_code == 4);
  std::string timer_id = RunIdFromStderr(timed.err);
  auto started = Clock::now();

  TestServer server(box);
  // The signal's run stays parked until the signal comes.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  CHECK(StatusOf(box, signal_id) == "waiting");
  ExitInfo sent = box.KeelDb({"signal", signal_id, "approve", "--data", R"({"ok": true})"});
  REQUIRE(sent.exit_code == 0);
  REQUIRE(Eventually([&] { return StatusOf(box, signal_id) == "succeeded"; }));
  CHECK(NodeEntry(box.Show(signal_id)["nodes"], "publish")["output"]["approved"].Bool());

  REQUIRE(Eventually([&] { return StatusOf(box, timer_id) == "succeeded"; }));
  CHECK(std::chrono::duration<double>(Clock::now() - started).count() >= 1.0);
  CHECK(NodeEntry(box.Show(timer_id)["nodes"], "after")["output"].Str() == "done");
}

TEST_CASE("two servers on one database resume each interrupted run exactly once" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::vector<std::string> ids;
  std::vector<std::string> ledgers;
  std::string go = box.Path("go");
  for (int i = 0; i < 3; ++i) {
    ledgers.push_back(box.Path("ledger" + std::to_string(i)));
    std::string wf = box.Write("gated" + std::to_string(i) + ".lua", Gated(ledgers[i], go));
    ids.push_back(KilledRun(box, wf, ledgers[i]));
  }
  std::ofstream(go) << "go";
  auto tweak = [](service::ServiceOptions& o) {
    o.auto_resume = true;
    o.resume_grace_s = 0.2;
  };
  TestServer a(box, tweak);
  TestServer b(box, tweak);
  for (const std::string& id : ids) {
    REQUIRE(Eventually([&] { return StatusOf(box, id) == "succeeded"; }));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));
  for (size_t i = 0; i < ids.size(); ++i) {
    std::vector<std::string> kinds = Kinds(box.Show(ids[i], true));
    CHECK(Count(kinds, "auto_resumed") == 1);
    CHECK(Count(kinds, "run_resumed") == 1);
    CHECK(Count(Lines(ledgers[i]), "last") == 1);
    CHECK(Count(Lines(ledgers[i]), "first") == 1);
  }
}

TEST_CASE("POST resume (from) and fork (params): 404, 409 and 400 as JSON" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string ledger = box.Path("ledger");
  std::string go = box.Path("go");
  std::ofstream(go) << "go";
  std::string wf = box.Write("gated.lua", Gated(ledger, go));
  ExitInfo run = box.KeelDb({"run", wf, "-p", "tag=one"});
  REQUIRE(run.exit_code == 0);
  std::string id = RunIdFromStderr(run.err);
  ExitInfo submitted = box.KeelDb({"submit", wf});
  std::string queued = submitted.out.substr(0, submitted.out.find('\n'));
  REQUIRE(box.KeelDb({"cancel", queued}).exit_code == 0);
  TestServer server(box);

  auto [missing, missing_body] = server.Post("/api/v1/runs/nosuchrun/resume", "");
  CHECK(missing == 404);
  CHECK(!missing_body["error"].Str().empty());
  CHECK(server.Post("/api/v1/runs/nosuchrun/fork", "{}").first == 404);
  auto [done, done_body] = server.Post("/api/v1/runs/" + id + "/resume", "");
  CHECK(done == 409);
  CHECK(done_body["error"].Str().find("succeeded") != std::string::npos);
  CHECK(server.Post("/api/v1/runs/" + id + "/resume", "[]").first == 400);
  auto [bad_from, bad_from_body] =
      server.Post("/api/v1/runs/" + id + "/resume", R"({"from": "gaet"})");
  CHECK(bad_from == 400);
  CHECK(bad_from_body["error"].Str().find("gate") != std::string::npos);

  // Resume from "gate": gate and last run again, first is kept.
  auto [resumed, resumed_body] =
      server.Post("/api/v1/runs/" + id + "/resume", R"({"from": "gate"})");
  CHECK(resumed == 202);
  CHECK(resumed_body["run_id"].Str() == id);
  REQUIRE(Eventually([&] { return Count(Lines(ledger), "last") == 2; }));
  REQUIRE(Eventually([&] { return StatusOf(box, id) == "succeeded"; }));
  CHECK(Count(Lines(ledger), "first") == 1);

  // Fork from "last" with a new tag: only last runs, with the new param.
  auto [forked, fork_body] = server.Post("/api/v1/runs/" + id + "/fork",
                                         R"({"from": "last", "params": {"tag": "two"}})");
  REQUIRE(forked == 201);
  std::string fork_id = fork_body["run_id"].Str();
  CHECK(fork_id != id);
  REQUIRE(Eventually([&] { return StatusOf(box, fork_id) == "succeeded"; }));
  CHECK(NodeEntry(box.Show(fork_id)["nodes"], "last")["output"].Str() == "two");
  CHECK(Count(Lines(ledger), "first") == 1);
  CHECK(Count(Lines(ledger), "gate") == 2);
  auto [bad_param, bad_param_body] =
      server.Post("/api/v1/runs/" + id + "/fork", R"({"params": {"tga": 1}})");
  CHECK(bad_param == 400);
  CHECK(bad_param_body["error"].Str().find("tga") != std::string::npos);

  // Cancelled: 409.
  CHECK(server.Post("/api/v1/runs/" + queued + "/resume", "").first == 409);
}

TEST_CASE("a script that loops at load time fails the POST after the timeout; a queued run "
          "whose script went missing is recorded failed" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("loop.lua", "while true do end\n");
  std::string gone = box.Write("gone.lua", kTimer);
  ExitInfo submitted = box.KeelDb({"submit", gone});
  REQUIRE(submitted.exit_code == 0);
  std::string id = submitted.out.substr(0, submitted.out.find('\n'));
  std::filesystem::remove(gone);

  TestServer server(box, {}, std::chrono::seconds(2));
  auto started = Clock::now();
  auto [status, body] = server.Post("/api/v1/runs", R"({"workflow": "loop.lua"})");
  CHECK(status == 400);
  CHECK(body["error"].Str().find("did not finish loading within 2 s") != std::string::npos);
  CHECK(std::chrono::duration<double>(Clock::now() - started).count() < 15);

  REQUIRE(Eventually([&] { return StatusOf(box, id) == "failed"; }));
  std::string error = box.Show(id)["error"].Str();
  CHECK(error.find("could not be started") != std::string::npos);
  CHECK(error.find(box.db() + "-logs/" + id + ".log") != std::string::npos);
  std::ifstream log(box.db() + "-logs/" + id + ".log");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  CHECK(text.find("no longer exists") != std::string::npos);
}

TEST_CASE("an interrupted run is auto-resumed (reason interrupted); a run handed to a server "
          "that died is taken by the next; POST resume at --max-runs answers 503" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string ledger = box.Path("ledger");
  std::string go = box.Path("go");
  std::string wf = box.Write("gated.lua", Gated(ledger, go));
  // Interrupted by SIGTERM: recorded so by its process.
  auto p = box.StartDb({"run", wf});
  REQUIRE(Eventually([&] { return Count(Lines(ledger), "gate") == 1; }));
  std::string interrupted = RunIdFromStderr(p->Stderr());
  kill(p->pid(), SIGTERM);
  p->Wait(std::chrono::seconds(30));
  REQUIRE(StatusOf(box, interrupted) == "interrupted");
  // Queued, then handed to a server that died before its child claimed it.
  ExitInfo submitted = box.KeelDb({"submit", wf});
  REQUIRE(submitted.exit_code == 0);
  std::string orphan = submitted.out.substr(0, submitted.out.find('\n'));
  {
    auto store = SqliteStore::Open(box.db(), {});
    REQUIRE(store.ok());
    RunRecord run = *(*store)->GetRun(orphan);
    Owner dead{999999999, CurrentOwner().host, 1};
    REQUIRE((*store)->HandOffRun(orphan, run.epoch, dead, run.created_at, {},
                                 [](const Owner&, double) { return false; })
                .ok());
  }

  // One slot: the first start takes it; a POST resume meanwhile gets 503.
  TestServer server(box, [](service::ServiceOptions& o) {
    o.auto_resume = true;
    o.max_runs = 1;
  });
  // Whichever started is claimed by its child (running); the other waits.
  REQUIRE(Eventually([&] {
    return StatusOf(box, interrupted) == "running" || StatusOf(box, orphan) == "running";
  }));
  CHECK(server.api().children().Active() == 1);
  std::string other = StatusOf(box, interrupted) == "running" ? orphan : interrupted;
  auto [busy, busy_body] = server.Post("/api/v1/runs/" + other + "/resume", "");
  CHECK(busy == 503);
  CHECK(busy_body["error"].Str().find("--max-runs") != std::string::npos);

  std::ofstream(go) << "go";
  REQUIRE(Eventually([&] { return StatusOf(box, interrupted) == "succeeded"; }));
  REQUIRE(Eventually([&] { return StatusOf(box, orphan) == "succeeded"; }));
  Json show = box.Show(interrupted, /*events=*/true);
  bool found = false;
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    if (show["events"][i]["kind"].Str() != "auto_resumed") continue;
    found = true;
    CHECK(show["events"][i]["data"]["reason"].Str() == "interrupted");
  }
  CHECK(found);
  std::vector<std::string> kinds = Kinds(box.Show(orphan, /*events=*/true));
  CHECK(Count(kinds, "run_started") == 1);
  CHECK(Count(kinds, "auto_resumed") == 0);
}

}  // namespace keel::testing
