// `keel resume` of a run whose node used up its retries: the node gets a
// fresh retry budget, and its attempt numbers keep counting.

#include <doctest/doctest.h>

#include <string>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

// `fetch` fails while its attempt number is at most params.failures.
const char kFlaky[] = R"lua(local keel = require "keel"
return keel.workflow "flaky" {
  params = { failures = 3 },
  keel.fn "fetch" {
    retry = { attempts = 2, base = 0 },
    run = function(ctx)
      if ctx.attempt <= ctx.params.failures then
        keel.fail { kind = "transient", message = "attempt " .. ctx.attempt }
      end
      return ctx.attempt
    end,
  },
}
)lua";

TEST_CASE("resume gives a node that used up its retries a fresh retry budget" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("flaky.lua", kFlaky);
  ExitInfo first = box.KeelDb({"run", wf});
  INFO(first.Describe());
  REQUIRE(first.exit_code == 1);
  std::string id = RunIdFromStderr(first.err);
  REQUIRE(!id.empty());
  CHECK(NodeEntry(box.Show(id)["nodes"], "fetch")["attempts"].Int() == 2);

  // Attempt 3 fails too; attempt 4, the resume's second, succeeds.
  ExitInfo resumed = box.KeelDb({"resume", id});
  INFO(resumed.Describe());
  CHECK(resumed.exit_code == 0);
  Json fetch = NodeEntry(box.Show(id)["nodes"], "fetch");
  CHECK(fetch["attempts"].Int() == 4);
  CHECK(fetch["output"].Int() == 4);
}

}  // namespace
}  // namespace keel::testing
