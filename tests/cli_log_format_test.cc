// --log-format json through the real binary: every line of stderr is one JSON
// object with a severity decided by engine/event_severity.h (an optional
// node's failure a warning, a required one's an error), breaker transitions
// included, which text progress prints too; `keel show --events` and its
// --json carry the severity; a bad value is a usage error naming the option.

#include "tests/policy_test_util.h"

namespace keel::testing {
namespace {

// An optional node and a required node that fail, a node that succeeds on
// its retry, and a breaker that opens on its first failure and then turns a
// second node on its key away.
constexpr char kFlow[] = R"lua(local keel = require "keel"
return keel.workflow "severities" {
  keel.fn "geo" { optional = true,
    run = function() keel.fail { kind = "transient", message = "geo down" } end },
  keel.fn "flaky" { retry = { attempts = 2, base = 0.01, jitter = "none" },
    run = function(ctx)
      if ctx.attempt < 2 then keel.fail { kind = "transient", message = "blip" } end
      return 1
    end },
  keel.fn "llm" { circuit = { key = "openai", failures = 1, cooldown = 600 },
    run = function() keel.log("calling") keel.fail { kind = "transient", message = "503" } end },
  keel.fn "again" { after = { "flaky", "llm" }, join = "any",
    circuit = { key = "openai", failures = 1, cooldown = 600 }, run = function() return 1 end },
  keel.fn "must" { after = { "flaky" }, run = function() error("boom") end },
}
)lua";

// The lines of `r.err`, each parsed; fails the test on a line that is not
// one JSON object.
std::vector<Json> JsonLines(const ExitInfo& r) {
  std::vector<Json> lines;
  for (const std::string& line : Lines(r.err)) {
    CAPTURE(line);
    Json parsed = Json::Parse(line);
    REQUIRE(parsed.IsObject());
    lines.push_back(parsed);
  }
  return lines;
}

// The first line of `kind` for `node` ("" for a run-level line); null when none.
Json Find(const std::vector<Json>& lines, const std::string& kind, const std::string& node) {
  for (const Json& line : lines) {
    bool same_node = node.empty() ? line["node"].IsNull() : line["node"].Str() == node;
    if (line["kind"].Str() == kind && same_node) return line;
  }
  return Json::Parse("null");
}

TEST_CASE("--log-format json: one JSON object per line, each with its severity" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("flow.lua", kFlow);
  ExitInfo r = box.KeelDb({"run", wf, "--log-format", "json"}, kPrompt);
  INFO(r.Describe());
  REQUIRE(r.exit_code == 1);
  std::vector<Json> lines = JsonLines(r);
  REQUIRE(lines.size() > 10);
  const std::string run_id = lines.front()["run_id"].Str();
  CHECK(lines.front()["kind"].Str() == "run_started");
  for (const Json& line : lines) {
    CAPTURE(line.Dump());
    CHECK(line["run_id"].Str() == run_id);
    CHECK(IsoSeconds(line["ts"].Str()) > 0);
    CHECK(line["data"].IsObject());
    CHECK(line["message"].IsString());
    std::string severity = line["severity"].Str();
    CHECK((severity == "info" || severity == "warning" || severity == "error" ||
           severity == "critical"));
  }
  auto severity = [&](const std::string& kind, const std::string& node) {
    Json line = Find(lines, kind, node);
    INFO(kind, " ", node);
    REQUIRE(line.IsObject());
    return line["severity"].Str();
  };
  CHECK(severity("node_failed", "geo") == "warning");
  CHECK(Find(lines, "node_failed", "geo")["data"]["optional"].Bool());
  CHECK(severity("node_failed", "must") == "error");
  CHECK(severity("attempt_failed", "flaky") == "warning");
  CHECK(severity("retry_scheduled", "flaky") == "info");
  CHECK(severity("node_succeeded", "flaky") == "info");
  CHECK(severity("breaker_opened", "llm") == "warning");
  CHECK(Find(lines, "breaker_opened", "llm")["message"].Str() == "breaker openai opened");
  CHECK(severity("circuit_rejected", "again") == "warning");
  CHECK(severity("run_finished", "") == "error");
  CHECK(lines.back()["kind"].Str() == "run_finished");
  Json log = Find(lines, "log", "llm");
  REQUIRE(log.IsObject());
  CHECK(log["message"].Str() == "calling");

  SUBCASE("keel fork --log-format json prints its progress the same way") {
    ExitInfo f = box.KeelDb({"fork", run_id, "--from", "must", "--log-format", "json"}, kPrompt);
    INFO(f.Describe());
    std::vector<Json> forked = JsonLines(f);
    REQUIRE(!forked.empty());
    CHECK(forked.front()["run_id"].Str() != run_id);
    CHECK(forked.front()["kind"].Str() == "run_started");
    CHECK(forked.front()["data"]["forked_from"].Str() == run_id);
    CHECK(forked.front()["data"]["kept"].Int() == 1);
    CHECK(Find(forked, "node_failed", "must")["severity"].Str() == "error");
    CHECK(forked.back()["kind"].Str() == "run_finished");
  }

  SUBCASE("keel show --events and --json carry the same severities") {
    Json show = box.Show(run_id, true);
    CHECK(Events(show, "node_failed", "geo").at(0)["severity"].Str() == "warning");
    CHECK(Events(show, "node_failed", "must").at(0)["severity"].Str() == "error");
    CHECK(Events(show, "breaker_opened", "llm").at(0)["severity"].Str() == "warning");
    CHECK(Events(show, "run_finished").at(0)["severity"].Str() == "error");
    ExitInfo text = box.KeelDb({"show", run_id, "--events"});
    REQUIRE(text.exit_code == 0);
    bool header = false;
    bool breaker = false;
    for (const std::string& line : Lines(text.out)) {
      if (line.starts_with("seq ")) header = line.find(" severity ") != std::string::npos;
      if (line.find("breaker_opened") != std::string::npos) {
        breaker = line.find(" warning ") != std::string::npos;
      }
    }
    CHECK(header);
    CHECK(breaker);
  }
}

TEST_CASE("text progress prints breaker transitions" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("flow.lua", kFlow);
  ExitInfo r = box.KeelDb({"run", wf}, kPrompt);
  INFO(r.Describe());
  REQUIRE(r.exit_code == 1);
  CHECK(r.err.find(" breaker openai opened\n") != std::string::npos);
}

TEST_CASE("a --log-format that is neither text nor json is a usage error naming it" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("flow.lua", kFlow);
  for (const char* command : {"run", "resume", "fork"}) {
    CAPTURE(command);
    ExitInfo r = box.KeelDb(
        {command, std::string(command) == "run" ? wf : "nosuchrun", "--log-format", "yaml"});
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("--log-format") != std::string::npos);
    CHECK(r.err.find("yaml") != std::string::npos);
  }
}

}  // namespace
}  // namespace keel::testing
