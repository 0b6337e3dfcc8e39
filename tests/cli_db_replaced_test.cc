// A database file deleted or replaced under a running `keel run`: the run
// notices at its next checkpoint and stops with a clear error (exit 2)
// instead of "succeeding" into a file nobody can read any more.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr char kSlowChain[] = R"lua(
local keel = require "keel"
return keel.workflow "slow" {
  keel.fn "first" { run = function() return 1 end },
  keel.fn "wait" { after = { "first" }, run = function()
    while not io.open(")lua";
constexpr char kSlowChainTail[] = R"lua(") do keel.sleep(0.02) end
    return 2
  end },
  keel.fn "last" { after = { "wait" }, run = function() return 3 end },
}
)lua";

TEST_CASE("a database deleted or replaced mid-run stops the run with a clear error" *
          doctest::timeout(60)) {
  Sandbox box(KEEL_BIN);
  const std::string go = box.Path("go");
  box.Write("slow.lua", std::string(kSlowChain) + go + kSlowChainTail);
  bool replace = false;
  SUBCASE("deleted") {}
  SUBCASE("replaced") { replace = true; }
  CAPTURE(replace);
  box.Write("quick.lua",
            "local keel = require 'keel'\n"
            "return keel.workflow 'quick' { keel.fn 'one' { run = function() return 1 end } }\n");
  auto run = box.StartDb({"run", "slow.lua"});
  REQUIRE(run->WaitForStderr("wait started", std::chrono::seconds(20)));
  if (replace) {
    const std::string other = box.Path("other.db");
    REQUIRE(box.Keel({"run", "quick.lua", "--db", other}).exit_code == 0);
    std::filesystem::rename(other, box.db());
  } else {
    std::filesystem::remove(box.db());
  }
  box.Write("go", "");
  ExitInfo r = run->Wait(std::chrono::seconds(30));
  INFO(r.Describe());
  REQUIRE_FALSE(r.timed_out);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(replace ? "was replaced" : "was deleted") != std::string::npos);
  const std::string id = RunIdFromStderr(r.err);
  REQUIRE_FALSE(id.empty());
  CHECK(r.err.find("run " + id + " stopped: the database file " + box.db()) != std::string::npos);
  CHECK(r.err.find("run " + id + " succeeded") == std::string::npos);
}

}  // namespace
}  // namespace keel::testing
