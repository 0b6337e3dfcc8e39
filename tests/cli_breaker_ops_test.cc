// An operator's breaker states through the real binary: `keel breakers
// --force-open`, `--disable` and `--close` change what the next run's calls
// meet and stay until changed; unknown keys, conflicting options and a
// locked database are clear errors; `--json --summary` carries the
// aggregate the table's last line shows.

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/breaker_listing.h"
#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

// "api" succeeds; "down" always fails and opens after 2 failures in a row
// (3 attempts each run, so each run that reaches it opens it).
const char kFlow[] = R"lua(local keel = require "keel"
return keel.workflow "ops" {
  keel.fn "call" { circuit = { key = "api" }, run = function() return "ok" end },
  keel.fn "down" {
    circuit = { key = "svc", failures = 2, cooldown = 600 },
    retry = { attempts = 3, base = 0.01, max = 0.02 },
    optional = true,
    run = function() keel.fail{ kind = "transient", message = "service down" } end,
  },
}
)lua";

ExitInfo Run(const Sandbox& box) { return box.KeelDb({"run", box.Write("flow.lua", kFlow)}); }

ExitInfo Breakers(const Sandbox& box, const std::vector<std::string>& args) {
  std::vector<std::string> all{"breakers"};
  all.insert(all.end(), args.begin(), args.end());
  return box.KeelDb(all);
}

TEST_CASE("--force-open makes every call fail fast until --close" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  REQUIRE(Run(box).exit_code == 3);  // degraded: "down" is optional
  CHECK(ListedBreaker(box, "api")["calls"].Int() == 1);

  ExitInfo forced = Breakers(box, {"--force-open", "api"});
  INFO(forced.Describe());
  CHECK(forced.exit_code == 0);
  CHECK(forced.out == "breaker api forced open (was closed)\n");
  CHECK(Breakers(box, {"--force-open", "api"}).out == "breaker api was already forced open\n");

  // The next run's call is refused without running: the node fails
  // circuit_open and the run fails.
  ExitInfo refused = box.KeelDb({"run", box.Write("flow.lua", kFlow), "--json"});
  INFO(refused.Describe());
  CHECK(refused.exit_code == 1);
  Json run = box.Show(Json::Parse(refused.out)["run_id"].Str());
  CHECK(NodeEntry(run["nodes"], "call")["error_kind"].Str() == "circuit_open");
  Json api = ListedBreaker(box, "api");
  CHECK(api["state"].Str() == "forced_open");
  CHECK(api["calls"].Int() == 1);
  CHECK(api["rejected"].Int() >= 1);
  std::string table = Breakers(box, {}).out;
  CHECK(table.find("\napi  forced_open  100%  ") != std::string::npos);
  REQUIRE(api["transitions"].Size() == 1);
  CHECK(api["transitions"][0]["to"].Str() == "forced_open");

  ExitInfo closed = Breakers(box, {"--close", "api"});
  INFO(closed.Describe());
  CHECK(closed.exit_code == 0);
  CHECK(closed.out == "breaker api closed (was forced open)\n");
  CHECK(Breakers(box, {"--close", "api"}).out == "breaker api was already closed\n");
  CHECK(Run(box).exit_code == 3);
  api = ListedBreaker(box, "api");
  CHECK(api["state"].Str() == "closed");
  CHECK(api["calls"].Int() == 2);
  CHECK(api["transitions"].Size() == 2);
}

TEST_CASE("--disable admits every call, still counting it, until --close" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  REQUIRE(Run(box).exit_code == 3);
  Json svc = ListedBreaker(box, "svc");
  REQUIRE(svc["state"].Str() == "open");
  CHECK(svc["calls"].Int() == 2);  // the third attempt was refused

  ExitInfo disabled = Breakers(box, {"--disable", "svc"});
  INFO(disabled.Describe());
  CHECK(disabled.exit_code == 0);
  CHECK(disabled.out == "breaker svc disabled (was open)\n");
  // Two more runs: all three attempts of each are made, and fail, yet it
  // never opens.
  CHECK(Run(box).exit_code == 3);
  CHECK(Run(box).exit_code == 3);
  svc = ListedBreaker(box, "svc");
  CHECK(svc["state"].Str() == "disabled");
  CHECK(svc["calls"].Int() == 8);
  CHECK(svc["failed"].Int() == 8);
  CHECK(svc["rejected"].Int() == 1);
  CHECK(svc["health_percent"].Num() == 0);

  // Closed, its own thresholds apply again: the next run opens it.
  CHECK(Breakers(box, {"--close", "svc"}).out == "breaker svc closed (was disabled)\n");
  CHECK(ListedBreaker(box, "svc")["state"].Str() == "closed");
  CHECK(Run(box).exit_code == 3);
  svc = ListedBreaker(box, "svc");
  CHECK(svc["state"].Str() == "open");
  CHECK(svc["calls"].Int() == 10);
}

TEST_CASE("--close closes an open breaker and the next run calls again" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  REQUIRE(Run(box).exit_code == 3);
  REQUIRE(ListedBreaker(box, "svc")["state"].Str() == "open");
  ExitInfo closed = Breakers(box, {"--close", "svc"});
  INFO(closed.Describe());
  CHECK(closed.exit_code == 0);
  CHECK(closed.out == "breaker svc closed (was open)\n");
  Json svc = ListedBreaker(box, "svc");
  CHECK(svc["state"].Str() == "closed");
  CHECK(svc["failures"].Int() == 0);
  CHECK(svc["half_open_in_s"].IsNull());
  CHECK(Run(box).exit_code == 3);
  CHECK(ListedBreaker(box, "svc")["calls"].Int() == 4);
}

TEST_CASE("unknown keys and conflicting options are usage errors that change nothing" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ExitInfo no_db = Breakers(box, {"--force-open", "api"});
  CHECK(no_db.exit_code == 2);
  CHECK(no_db.err == "keel: --force-open: no breaker 'api': no database at " + box.db() + "\n");
  CHECK_FALSE(FileExists(box.db()));

  REQUIRE(Run(box).exit_code == 3);
  for (const char* option : {"--force-open", "--disable", "--close"}) {
    ExitInfo unknown = Breakers(box, {option, "apj"});
    INFO(unknown.Describe());
    CHECK(unknown.exit_code == 2);
    CHECK(unknown.err == std::string("keel: ") + option +
                             ": no breaker 'apj' (did you mean 'api'?) in " + box.db() +
                             " (see keel breakers)\n");
  }
  ExitInfo far = Breakers(box, {"--close", "nothing-like-it"});
  CHECK(far.err.find("no breaker 'nothing-like-it' in") != std::string::npos);
  // No breaker was created for the unknown keys.
  ExitInfo json = Breakers(box, {"--json"});
  CHECK(Json::Parse(json.out).Size() == 2);

  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--force-open", "api", "--close", "api"},
                                             {"--disable", "api", "--force-open", "svc"},
                                             {"--close", "api", "--reset", "svc"},
                                             {"--disable", "api", "--all"},
                                             {"--force-open", "api", "--json"},
                                             {"--summary"},
                                             {"--summary", "--close", "api"}}) {
    ExitInfo usage = Breakers(box, args);
    INFO(usage.Describe());
    CHECK(usage.exit_code == 2);
    CHECK(usage.out.empty());
  }
  CHECK(ListedBreaker(box, "api")["state"].Str() == "closed");
  CHECK(ListedBreaker(box, "svc")["state"].Str() == "open");
}

TEST_CASE("a locked database: a clear error and exit 1" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  REQUIRE(Run(box).exit_code == 3);
  SqliteDb holder(box.db(), false);
  holder.Exec("BEGIN IMMEDIATE");
  ExitInfo locked = Breakers(box, {"--force-open", "api"});
  holder.Exec("ROLLBACK");
  INFO(locked.Describe());
  CHECK(locked.exit_code == 1);
  CHECK(locked.err.starts_with("keel: --force-open: cannot change breaker 'api': "));
  CHECK(locked.err.find("locked") != std::string::npos);
  CHECK(ListedBreaker(box, "api")["state"].Str() == "closed");
}

TEST_CASE("the aggregate line and --json --summary agree" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ExitInfo empty = Breakers(box, {"--json", "--summary"});
  CHECK(empty.exit_code == 0);
  Json none = Json::Parse(empty.out);
  CHECK(none["summary"]["count"].Int() == 0);
  CHECK(none["summary"]["health_percent"].Num() == 100);
  CHECK(none["breakers"].Size() == 0);

  REQUIRE(Run(box).exit_code == 3);
  REQUIRE(Breakers(box, {"--force-open", "api"}).exit_code == 0);
  // api: 1 call, 1 ok; svc: 2 calls, both failed: 1 of 3 calls succeeded.
  ExitInfo table = Breakers(box, {});
  INFO(table.Describe());
  CHECK(table.out.ends_with("\n2 breakers: 1 open, 1 forced_open; health 33.3%\n"));

  ExitInfo json = Breakers(box, {"--json", "--summary"});
  INFO(json.Describe());
  REQUIRE(json.exit_code == 0);
  Json both = Json::Parse(json.out);
  Json summary = both["summary"];
  CHECK(summary["count"].Int() == 2);
  CHECK(summary["states"]["closed"].Int() == 0);
  CHECK(summary["states"]["open"].Int() == 1);
  CHECK(summary["states"]["forced_open"].Int() == 1);
  CHECK(summary["states"]["disabled"].Int() == 0);
  CHECK(summary["states"]["recovering"].Int() == 0);
  CHECK(summary["states"]["half_open"].Int() == 0);
  CHECK(summary["health_calls"].Int() == 3);
  CHECK(summary["health_failed"].Int() == 2);
  CHECK(summary["health_percent"].Num() == doctest::Approx(33.3));
  // The breakers are those of the plain array.
  CHECK(both["breakers"].Size() == 2);
  CHECK(both["breakers"][0]["key"].Str() == "api");
  CHECK(both["breakers"][1]["key"].Str() == "svc");
}

}  // namespace
}  // namespace keel::testing
