// `keel breakers` end to end: breakers left in the database by real runs,
// listed as a table with the aggregate line and as JSON, and reset one by
// one or all at once.

#include <doctest/doctest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

// Three breakers: "svc" opens (two failures in a row, cooldown 60 s),
// "mixed" sees one failure then a success, "fine" only successes.
const char kFlow[] = R"lua(local keel = require "keel"
return keel.workflow "breakers" {
  keel.fn "down" {
    circuit = { key = "svc", failures = 2, cooldown = 60 },
    retry = { attempts = 3, base = 0.01, max = 0.02 },
    optional = true,
    run = function() keel.fail{ kind = "transient", message = "service down" } end,
  },
  keel.fn "flaky" {
    circuit = { key = "mixed", failures = 5 },
    retry = { attempts = 2, base = 0.01, max = 0.02 },
    run = function(ctx)
      if ctx.attempt == 1 then keel.fail{ kind = "transient", message = "blip" } end
      return "ok"
    end,
  },
  keel.fn "steady" { circuit = { key = "fine" }, run = function() return 1 end },
}
)lua";

// Runs kFlow once; it ends degraded because "down" is optional.
void RunFlow(const Sandbox& box) {
  ExitInfo r = box.KeelDb({"run", box.Write("flow.lua", kFlow)});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 3);
}

// The entry of `breakers` (keel breakers --json) for `key`; null when absent.
Json Breaker(const Json& breakers, const std::string& key) {
  for (size_t i = 0; i < breakers.Size(); ++i) {
    if (breakers[i]["key"].Str() == key) return breakers[i];
  }
  return Json::Null();
}

Json ListJson(const Sandbox& box) {
  ExitInfo r = box.KeelDb({"breakers", "--json"});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  return Json::Parse(r.out);
}

// The table row (split on runs of spaces) whose first cell is `key`.
std::vector<std::string> Row(const std::string& table, const std::string& key) {
  static const std::regex kCells(R"(\S+(?: \S+)*)");
  std::string line;
  for (size_t start = 0; start < table.size();) {
    size_t end = table.find('\n', start);
    if (end == std::string::npos) end = table.size();
    line = table.substr(start, end - start);
    start = end + 1;
    if (line.rfind(key + " ", 0) != 0) continue;
    std::vector<std::string> cells;
    // Cells are separated by two spaces or more; "HALF-OPEN IN" holds one.
    for (std::sregex_iterator it(line.begin(), line.end(), kCells), stop; it != stop; ++it) {
      cells.push_back(it->str());
    }
    return cells;
  }
  return {};
}

TEST_CASE("breakers on a missing database: nothing to list, nothing created" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ExitInfo list = box.KeelDb({"breakers"});
  INFO(list.Describe());
  CHECK(list.exit_code == 0);
  CHECK(list.out.empty());
  CHECK(list.err == "no breakers (no database at " + box.db() + ")\n");

  ExitInfo json = box.KeelDb({"breakers", "--json"});
  CHECK(json.exit_code == 0);
  CHECK(Json::Parse(json.out).Size() == 0);

  ExitInfo all = box.KeelDb({"breakers", "--all"});
  CHECK(all.exit_code == 0);
  CHECK(all.out == "reset 0 breakers\n");

  ExitInfo one = box.KeelDb({"breakers", "--reset", "svc"});
  INFO(one.Describe());
  CHECK(one.exit_code == 2);
  CHECK(one.err.find("no breaker 'svc'") != std::string::npos);
  CHECK_FALSE(FileExists(box.db()));
}

TEST_CASE("breakers lists what runs left behind, as a table and as JSON" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  RunFlow(box);

  ExitInfo table = box.KeelDb({"breakers"});
  INFO(table.Describe());
  REQUIRE(table.exit_code == 0);
  CHECK(table.out.rfind(
            "KEY    STATE   HEALTH  CALLS  FAILED  SLOW  TIMEOUTS  REJECTED  IN A ROW  NEXT\n",
            0) == 0);
  std::vector<std::string> svc = Row(table.out, "svc");
  REQUIRE(svc.size() == 10);
  CHECK(svc[1] == "open");
  CHECK(svc[2] == "0%");
  CHECK(svc[3] == "2");  // calls: the third attempt was refused, not made
  CHECK(svc[4] == "2");
  CHECK(svc[5] == "0");  // slow
  CHECK(svc[6] == "0");  // timeouts
  CHECK(svc[7] == "1");  // the refused third attempt
  CHECK(svc[8] == "2 failed");
  CHECK(std::regex_match(svc[9], std::regex(R"(5\d\.\ds|60\.0s)")));
  CHECK(Row(table.out, "mixed") ==
        std::vector<std::string>{"mixed", "closed", "50%", "2", "1", "0", "0", "0", "1 ok", "-"});
  CHECK(Row(table.out, "fine") ==
        std::vector<std::string>{"fine", "closed", "100%", "1", "0", "0", "0", "0", "1 ok", "-"});
  // The aggregate: 2 successful calls of 5 in all.
  CHECK(table.out.ends_with("\n3 breakers: 2 closed, 1 open; health 40%\n"));

  Json list = ListJson(box);
  REQUIRE(list.Size() == 3);
  CHECK(list[0]["key"].Str() == "fine");  // sorted by key
  Json open = Breaker(list, "svc");
  CHECK(open["state"].Str() == "open");
  CHECK(open["failures"].Int() == 2);
  CHECK(open["calls"].Int() == 2);
  CHECK(open["failed"].Int() == 2);
  CHECK(open["health_percent"].Num() == 0);
  CHECK(open["cooldown_s"].Num() == 60);
  CHECK(open["half_open_in_s"].Num() > 50);
  CHECK(open["half_open_in_s"].Num() <= 60);
  CHECK(open["opened_at"].IsString());
  CHECK(open["rejected"].Int() == 1);
  CHECK(open["consecutive_failures"].Int() == 2);
  CHECK(open["consecutive_successes"].Int() == 0);
  CHECK(open["last_failure_at"].IsString());
  CHECK(open["last_success_at"].IsNull());
  REQUIRE(open["transitions"].Size() == 1);
  CHECK(open["transitions"][0]["from"].Str() == "closed");
  CHECK(open["transitions"][0]["to"].Str() == "open");
  CHECK(open["transitions"][0]["at"].Str() == open["opened_at"].Str());
  CHECK(open["effective"]["next_cooldown_s"].Num() == 60);
  CHECK(open["effective"]["failure_threshold_rate"].IsNull());
  CHECK(open["effective"]["ramp_share"].IsNull());
  CHECK(open["effective"]["reopens"].Int() == 0);
  Json mixed = Breaker(list, "mixed");
  CHECK(mixed["state"].Str() == "closed");
  CHECK(mixed["health_percent"].Num() == 50);
  CHECK(mixed["half_open_in_s"].IsNull());
  CHECK(mixed["opened_at"].IsNull());

  // Once the cooldown has passed, the next call may probe at once.
  SqliteDb(box.db(), false).Exec("UPDATE breakers SET opened_at = opened_at - 120");
  CHECK(Row(box.KeelDb({"breakers"}).out, "svc").back() == "now");
  CHECK(Breaker(ListJson(box), "svc")["half_open_in_s"].Num() == 0);
}

TEST_CASE("breakers --reset deletes one breaker, --all every one" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  RunFlow(box);

  ExitInfo unknown = box.KeelDb({"breakers", "--reset", "nope"});
  INFO(unknown.Describe());
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("--reset: no breaker 'nope' in " + box.db()) != std::string::npos);
  ExitInfo close = box.KeelDb({"breakers", "--reset", "svx"});
  CHECK(close.exit_code == 2);
  CHECK(close.err.find("no breaker 'svx' (did you mean 'svc'?)") != std::string::npos);
  CHECK(ListJson(box).Size() == 3);

  ExitInfo one = box.KeelDb({"breakers", "--reset", "svc"});
  INFO(one.Describe());
  CHECK(one.exit_code == 0);
  CHECK(one.out == "reset 1 breaker\n");
  Json left = ListJson(box);
  CHECK(left.Size() == 2);
  CHECK(Breaker(left, "svc").IsNull());

  for (auto args : {std::vector<std::string>{"breakers", "--reset", "fine", "--all"},
                    std::vector<std::string>{"breakers", "--all", "--json"}}) {
    ExitInfo usage = box.KeelDb(args);
    INFO(usage.Describe());
    CHECK(usage.exit_code == 2);
  }
  CHECK(ListJson(box).Size() == 2);

  ExitInfo all = box.KeelDb({"breakers", "--all"});
  INFO(all.Describe());
  CHECK(all.exit_code == 0);
  CHECK(all.out == "reset 2 breakers\n");
  ExitInfo empty = box.KeelDb({"breakers"});
  CHECK(empty.exit_code == 0);
  CHECK(empty.out.empty());
  CHECK(empty.err == "no breakers in " + box.db() + "\n");
}

TEST_CASE("a reset breaker lets the next run call again" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  RunFlow(box);
  RunFlow(box);  // "svc" is open: the second run's calls are all refused
  CHECK(Breaker(ListJson(box), "svc")["calls"].Int() == 2);

  REQUIRE(box.KeelDb({"breakers", "--reset", "svc"}).exit_code == 0);
  RunFlow(box);
  Json svc = Breaker(ListJson(box), "svc");
  CHECK(svc["calls"].Int() == 2);
  CHECK(svc["state"].Str() == "open");
}

}  // namespace
}  // namespace keel::testing
