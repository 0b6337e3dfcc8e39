// `keel show` counts what the policy stack did to each node (retries,
// timeouts, breaker transitions and refusals, fallbacks), from the run's
// event log, in its EVENTS column and in --json.

#include <doctest/doctest.h>

#include <string>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

const char kFlow[] = R"lua(local keel = require "keel"
keel.workflow "plan_b" { keel.fn "output" { run = function() return "from plan b" end } }
return keel.workflow "policies" {
  keel.fn "slow" {
    timeout = 0.05, retry = { attempts = 2, base = 0.01, max = 0.02 }, fallback = "plan_b",
    run = function() keel.sleep(5) return "late" end,
  },
  keel.fn "down" {
    circuit = { key = "svc", failures = 2, cooldown = 60 },
    retry = { attempts = 3, base = 0.01, max = 0.02 },
    optional = true,
    run = function() keel.fail{ kind = "transient", message = "service down" } end,
  },
  keel.fn "plain" { run = function() return 1 end },
}
)lua";

const char kPlain[] = R"lua(local keel = require "keel"
return keel.workflow "plain" { keel.fn "only" { run = function() return 1 end } }
)lua";

std::string RunOnce(const Sandbox& box, const std::string& name, const char* text, int exit_code) {
  ExitInfo r = box.KeelDb({"run", box.Write(name, text)});
  INFO(r.Describe());
  REQUIRE(r.exit_code == exit_code);
  return RunIdFromStderr(r.err);
}

// The line of `table` that starts with `node` and a space.
std::string Line(const std::string& table, const std::string& node) {
  size_t at = table.find("\n" + node + " ");
  if (at == std::string::npos) return "";
  return table.substr(at + 1, table.find('\n', at + 1) - at - 1);
}

TEST_CASE("show counts each node's policy events" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string id = RunOnce(box, "policies.lua", kFlow, 3);

  ExitInfo text = box.KeelDb({"show", id});
  INFO(text.Describe());
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("\nNODE   STATUS     ATTEMPTS  DURATION  EVENTS ") != std::string::npos);
  CHECK(Line(text.out, "slow").find("  1 retry, 2 timeouts, fallback") != std::string::npos);
  CHECK(Line(text.out, "down").find("  2 retries, breaker opened, breaker open  circuit_open: ") !=
        std::string::npos);
  CHECK(Line(text.out, "plain").find("  succeeded  1") != std::string::npos);
  CHECK(Line(text.out, "plain").find("retr") == std::string::npos);

  Json show = box.Show(id);
  Json slow = NodeEntry(show["nodes"], "slow")["events"];
  CHECK(slow.Size() == 5);
  CHECK(slow["retry_scheduled"].Int() == 1);
  CHECK(slow["attempt_failed"].Int() == 2);
  CHECK(slow["attempt_timed_out"].Int() == 2);
  CHECK(slow["fallback_started"].Int() == 1);
  CHECK(slow["fallback_finished"].Int() == 1);
  Json down = NodeEntry(show["nodes"], "down")["events"];
  CHECK(down.Size() == 4);
  CHECK(down["retry_scheduled"].Int() == 2);
  CHECK(down["attempt_failed"].Int() == 2);
  CHECK(down["breaker_opened"].Int() == 1);
  CHECK(down["circuit_rejected"].Int() == 1);
  Json plain = NodeEntry(show["nodes"], "plain")["events"];
  CHECK(plain.IsObject());
  CHECK(plain.Size() == 0);
  CHECK(show["events"].IsNull());  // the log only with --events
  CHECK(box.Show(id, true)["events"].Size() > 10);
}

TEST_CASE("show has no EVENTS column when no policy acted" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string id = RunOnce(box, "plain.lua", kPlain, 0);
  ExitInfo text = box.KeelDb({"show", id});
  INFO(text.Describe());
  REQUIRE(text.exit_code == 0);
  CHECK(text.out.find("\nNODE  STATUS     ATTEMPTS  DURATION  ERROR\n") != std::string::npos);
  CHECK(box.Show(id)["nodes"][0]["events"].Size() == 0);
}

}  // namespace
}  // namespace keel::testing
