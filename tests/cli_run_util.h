#pragma once
// What the `keel run` end-to-end tests (cli_run_test, cli_run_errors_test)
// share: a three-node pipeline script and a --json run of a script. Test
// thread only.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/sandbox.h"

namespace keel::testing {

// Runs `wf` (a path) with --json and parses stdout; `extra` goes after the file.
inline Json RunJson(const Sandbox& box, const std::string& wf, int expected_exit,
             const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"run", wf, "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  ExitInfo r = box.KeelDb(args);
  INFO(r.Describe());
  REQUIRE(r.exit_code == expected_exit);
  return Json::Parse(r.out);
}

inline constexpr char kPipeline[] = R"lua(local keel = require "keel"
return keel.workflow "pipeline" {
  keel.fn "a" { run = function(ctx) return 20 end },
  keel.fn "b" { after = { "a" }, run = function(ctx) return { total = ctx.deps.a + 1 } end },
  keel.fn "c" { after = { "a" }, run = function(ctx) return "c" .. ctx.deps.a end },
}
)lua";

}  // namespace keel::testing
