#pragma once
// What the serve tests that interrupt and resume runs share: the "gated"
// workflow (its nodes note themselves in a ledger file; "gate" waits for a
// file), reading that ledger and a run's event kinds, polling, and a run
// killed (-9) mid-gate. Header-only (it asserts with doctest); call from
// the test's thread.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {

// Polls `done` every 50 ms for up to `limit`.
inline bool Eventually(const std::function<bool()>& done,
                       std::chrono::seconds limit = std::chrono::seconds(60)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

// The lines of the file at `path` (none when it does not exist).
inline std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

inline int Count(const std::vector<std::string>& items, const std::string& item) {
  return static_cast<int>(std::count(items.begin(), items.end(), item));
}

// The kinds of the events of `show` (`keel show --json --events`), in order.
inline std::vector<std::string> Kinds(const Json& show) {
  std::vector<std::string> kinds;
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    kinds.push_back(show["events"][i]["kind"].Str());
  }
  return kinds;
}

// A workflow whose nodes append their name to `ledger` when they run:
// "first", then "gate" (waits until the file `go` exists), then "last",
// which returns the param `tag`.
inline std::string Gated(const std::string& ledger, const std::string& go) {
  return R"lua(local keel = require "keel"
local function note(name)
  local f = io.open(")lua" + ledger + R"lua(", "a") f:write(name, "\n") f:close()
end
return keel.workflow "gated" {
  params = { tag = "none" },
  keel.fn "first" { run = function() note("first") return 1 end },
  keel.fn "gate" { after = { "first" }, run = function()
    note("gate")
    for i = 1, 12000 do
      local f = io.open(")lua" + go + R"lua(", "r")
      if f then f:close() return 2 end
      keel.sleep(0.01)
    end
    error("never released")
  end },
  keel.fn "last" { after = { "gate" }, run = function(ctx)
    note("last") return ctx.params.tag end },
}
)lua";
}

// Starts `keel run FILE` (a Gated workflow) and kills it (-9) once `ledger`
// shows "gate" ran and "first" is recorded: a run recorded running whose
// owner is dead. Returns its id.
inline std::string KilledRun(const Sandbox& box, const std::string& file,
                             const std::string& ledger) {
  auto p = box.StartDb({"run", file});
  REQUIRE(Eventually([&] { return Count(Lines(ledger), "gate") >= 1; }));
  std::string id = RunIdFromStderr(p->Stderr());
  REQUIRE(!id.empty());
  REQUIRE(Eventually([&] {
    return NodeEntry(box.Show(id)["nodes"], "first")["status"].Str() == "succeeded";
  }));
  p->Kill();
  return id;
}

}  // namespace keel::testing
