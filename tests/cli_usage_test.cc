// LLM accounting in the CLI: what `keel show` and `keel runs` report of a
// run's LLM calls (recorded straight into a database through SqliteStore),
// and the --provider, --max-tokens and --max-cost options of `keel run` and
// `keel resume`.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

// The script recorded with the sample runs, which gives `keel show` their
// node order.
const char kAgentsScript[] = R"lua(local keel = require "keel"
return keel.workflow "agents" {
  keel.fn "plan" { run = function() return 1 end },
  keel.fn "ask" { after = { "plan" }, run = function() return 2 end },
  keel.fn "tally" { after = { "ask" }, run = function() return 3 end },
}
)lua";

// A fallback workflow's node's LLM call, as the engine wraps it.
const char kWrappedCall[] =
    R"({"fallback":"plan_b","node":"output","event":"llm_call","data":{"provider":"mock",)"
    R"("model":"m","prompt_tokens":10,"completion_tokens":5,"cost":0,"seconds":0.1,)"
    R"("http_status":0,"hedge":0,"outcome":"ok"}})";

// An llm_call event's data.
std::string CallData(const std::string& provider, int prompt, int completion, double cost,
                     double seconds, int http_status, int hedge, const std::string& outcome) {
  std::string data = R"({"provider":")" + provider + R"(","model":"gpt-x","prompt_tokens":)" +
                     std::to_string(prompt) + R"(,"completion_tokens":)" +
                     std::to_string(completion) + R"(,"cost":)" + std::to_string(cost) +
                     R"(,"seconds":)" + std::to_string(seconds) + R"(,"http_status":)" +
                     std::to_string(http_status) + R"(,"hedge":)" + std::to_string(hedge) +
                     R"(,"outcome":")" + outcome + R"(")";
  if (outcome != "ok") data += R"(,"message":"slow down")";
  return data + "}";
}

// Writes runs straight into the database at `path` through the engine's store.
class RunWriter {
 public:
  explicit RunWriter(const std::string& path) {
    auto store = SqliteStore::Open(path, {});
    REQUIRE_MESSAGE(store.ok(), store.status().ToString());
    store_ = std::move(store).value();
  }
  ~RunWriter() { CHECK(store_->Flush().ok()); }

  // A run of kAgentsScript created at `created`, finished with `status`.
  void Run(const std::string& id, double created, RunStatus status, const std::string& error) {
    RunRecord run;
    run.id = id;
    run.workflow = "agents";
    run.script_path = "/nowhere/agents.lua";
    run.script_sha256 = "00";
    run.script_text = kAgentsScript;
    run.owner = {1, "elsewhere", 1};
    run.heartbeat = run.created_at = run.updated_at = created;
    run.node_count = 3;
    REQUIRE(store_->CreateRun(run).ok());
    store_->FinishRun(id, status, error, created + 5);
    now_ = created;
  }

  void Node(const std::string& run_id, const std::string& name, NodeStatus status, int attempts) {
    NodeRecord node;
    node.run_id = run_id;
    node.node = name;
    node.status = status;
    node.attempts = attempts;
    node.output_json = "1";
    node.started_at = now_ + 1;
    node.finished_at = now_ + 2;
    store_->SaveNode(node);
  }

  void Event(const std::string& run_id, const std::string& node, const std::string& kind,
             const std::string& data = "{}") {
    now_ += 0.01;
    store_->AppendEvent({run_id, 0, now_, node, kind, data});
  }

 private:
  std::unique_ptr<SqliteStore> store_;
  double now_ = 0;
};

// r-llm: calls across two attempts of `plan` (one hedged, one failed), a
// direct and a fallback call in `ask`; 1,249 tokens, cost 0.0123, 4 calls
// taking 2.35s. r-plain: no calls. r-free: unpriced calls.
void WriteSampleRuns(const std::string& db, bool with_llm, bool with_free) {
  RunWriter w(db);
  w.Run("r-plain", 1000, RunStatus::kSucceeded, "");
  for (const char* node : {"plan", "ask", "tally"}) {
    w.Node("r-plain", node, NodeStatus::kSucceeded, 1);
  }
  if (with_free) {
    w.Run("r-free", 2000, RunStatus::kSucceeded, "");
    w.Node("r-free", "plan", NodeStatus::kSucceeded, 1);
    w.Event("r-free", "plan", "llm_call", CallData("local", 300, 20, 0, 0.2, 200, 0, "ok"));
  }
  if (!with_llm) return;
  w.Run("r-llm", 3000, RunStatus::kFailed, "token budget exceeded: 1249 tokens spent, limit 1200");
  w.Node("r-llm", "plan", NodeStatus::kSucceeded, 2);
  w.Node("r-llm", "ask", NodeStatus::kFallback, 1);
  w.Node("r-llm", "tally", NodeStatus::kCancelled, 0);
  w.Event("r-llm", "plan", "llm_call", CallData("openai", 1000, 200, 0.01, 1.5, 200, 0, "ok"));
  w.Event("r-llm", "plan", "hedge_started", R"({"hedge":1})");
  w.Event("r-llm", "plan", "llm_call", CallData("openai", 0, 0, 0, 0.25, 429, 1, "rate_limited"));
  w.Event("r-llm", "plan", "hedge_aborted", R"({"hedge":1,"winner":0})");
  w.Event("r-llm", "ask", "llm_call", CallData("anthropic", 30, 4, 0.0023, 0.5, 200, 0, "ok"));
  w.Event("r-llm", "ask", "fallback_started", R"({"workflow":"plan_b","after":"transient"})");
  w.Event("r-llm", "ask", "fallback_event", kWrappedCall);
  w.Event("r-llm", "ask", "fallback_event",
          R"({"fallback":"plan_b","node":"output","event":"attempt_failed","data":{}})");
  w.Event("r-llm", "", "budget_exceeded",
          R"({"reason":"token budget exceeded","tokens":1249,"cost":0.0123})");
}

// The line of `text` that starts with `prefix`, or "".
std::string LineStarting(const std::string& text, const std::string& prefix) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.rfind(prefix, 0) == 0) return line;
    start = end + 1;
  }
  return "";
}

// The first line of `text` that contains `part`, or "".
std::string LineWith(const std::string& text, const std::string& part) {
  size_t at = text.find(part);
  if (at == std::string::npos) return "";
  size_t start = text.rfind('\n', at);
  start = start == std::string::npos ? 0 : start + 1;
  size_t end = text.find('\n', at);
  return text.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// `keel <args> --db <db>`, which must exit 0; its stdout.
std::string Ok(const Sandbox& box, const std::vector<std::string>& args) {
  ExitInfo r = box.KeelDb(args);
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  return r.out;
}

TEST_CASE("show: tokens and cost per node and for the run" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  WriteSampleRuns(box.db(), true, false);
  std::string out = Ok(box, {"show", "r-llm"});
  INFO(out);
  CHECK(Has(out, "tokens    1,249 (prompt 1,040 + completion 209), cost 0.0123\n"));
  CHECK(Has(out, "llm calls 4, taking 2.35s in all\n"));
  CHECK(Has(out, "error     token budget exceeded: 1249 tokens spent, limit 1200\n"));

  std::string header = LineStarting(out, "NODE");
  CHECK(Has(header, "DURATION  TOKENS  COST    EVENTS"));
  std::string plan = LineStarting(out, "plan ");
  CHECK(Has(plan, " 1,200 "));
  CHECK(Has(plan, " 0.0100 "));
  CHECK(Has(plan, "2 llm calls, 1 hedge"));
  // The fallback workflow's call counts for the node that ran it; its
  // failed attempt does not.
  std::string ask = LineStarting(out, "ask ");
  CHECK(Has(ask, " 49 "));
  CHECK(Has(ask, " 0.0023 "));
  CHECK(Has(ask, "fallback, 2 llm calls"));
  std::string tally = LineStarting(out, "tally ");
  CHECK(Has(tally, "-       -"));
  CHECK_FALSE(Has(tally, "llm"));
}

TEST_CASE("show --json: usage per node and for the run" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  WriteSampleRuns(box.db(), true, false);
  Json show = box.Show("r-llm");
  INFO(show.Dump());
  Json total = show["usage"];
  CHECK(total["prompt_tokens"].Int() == 1040);
  CHECK(total["completion_tokens"].Int() == 209);
  CHECK(total["cost"].Num() == doctest::Approx(0.0123));
  CHECK(total["calls"].Int() == 4);
  CHECK(total["seconds"].Num() == doctest::Approx(2.35));

  Json plan = NodeEntry(show["nodes"], "plan");
  CHECK(plan["usage"]["prompt_tokens"].Int() == 1000);
  CHECK(plan["usage"]["completion_tokens"].Int() == 200);
  CHECK(plan["usage"]["calls"].Int() == 2);
  CHECK(plan["events"]["llm_call"].Int() == 2);
  CHECK(plan["events"]["hedge_started"].Int() == 1);
  CHECK(plan["events"]["hedge_aborted"].Int() == 1);

  Json ask = NodeEntry(show["nodes"], "ask");
  CHECK(ask["usage"]["prompt_tokens"].Int() == 40);
  CHECK(ask["usage"]["completion_tokens"].Int() == 9);
  CHECK(ask["usage"]["cost"].Num() == doctest::Approx(0.0023));
  CHECK(ask["usage"]["calls"].Int() == 2);
  CHECK(ask["events"]["llm_call"].Int() == 2);
  CHECK(ask["events"]["attempt_failed"].IsNull());

  Json tally = NodeEntry(show["nodes"], "tally");
  CHECK(tally["usage"]["calls"].Int() == 0);
  CHECK(tally["usage"]["prompt_tokens"].Int() == 0);
  CHECK(tally["usage"]["cost"].Num() == 0);
}

TEST_CASE("show --events: LLM calls in words" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  WriteSampleRuns(box.db(), true, false);
  std::string out = Ok(box, {"show", "r-llm", "--events"});
  INFO(out);
  CHECK(Has(out, "openai gpt-x: 1,000 + 200 tokens, cost 0.0100, 1.5s, ok\n"));
  CHECK(
      Has(out, "openai gpt-x: 0 + 0 tokens, 0.25s, hedge 1, rate_limited (HTTP 429): slow down\n"));
  CHECK(Has(out, "fallback plan_b node output: mock m: 10 + 5 tokens, 0.1s, ok\n"));
  // Other events keep their JSON.
  CHECK(Has(LineWith(out, "hedge_started"), R"({"hedge":1})"));

  Json show = box.Show("r-llm", true);
  CHECK(show["events"].Size() == 9);
}

TEST_CASE("show: no usage columns without LLM calls, no cost without prices" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  WriteSampleRuns(box.db(), false, true);
  std::string plain = Ok(box, {"show", "r-plain"});
  INFO(plain);
  CHECK_FALSE(Has(plain, "TOKENS"));
  CHECK_FALSE(Has(plain, "tokens "));
  CHECK_FALSE(Has(plain, "llm calls"));
  CHECK_FALSE(Has(plain, "EVENTS"));
  Json json = box.Show("r-plain");
  CHECK(json["usage"]["calls"].Int() == 0);
  CHECK(json["usage"]["cost"].Num() == 0);
  CHECK(NodeEntry(json["nodes"], "plan")["usage"]["calls"].Int() == 0);

  std::string free = Ok(box, {"show", "r-free"});
  INFO(free);
  CHECK(Has(LineStarting(free, "NODE"), "TOKENS  EVENTS"));
  CHECK_FALSE(Has(free, "COST"));
  CHECK(Has(free, "tokens    320 (prompt 300 + completion 20)\n"));
}

TEST_CASE("runs: TOKENS and COST columns, usage in --json" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  WriteSampleRuns(box.db(), true, true);
  std::string out = Ok(box, {"runs"});
  INFO(out);
  CHECK(Has(LineStarting(out, "RUN"), "NODES  TOKENS  COST"));
  std::string llm = LineStarting(out, "r-llm");
  CHECK(Has(llm, " 1,249 "));
  CHECK(Has(llm, " 0.0123"));
  std::string free = LineStarting(out, "r-free");
  CHECK(Has(free, " 320 "));
  CHECK(Has(free, " -"));
  CHECK(Has(LineStarting(out, "r-plain"), " -       -"));

  Json runs = box.Runs();
  INFO(runs.Dump());
  REQUIRE(runs.Size() == 3);
  CHECK(runs[0]["run_id"].Str() == "r-llm");
  CHECK(runs[0]["usage"]["prompt_tokens"].Int() == 1040);
  CHECK(runs[0]["usage"]["completion_tokens"].Int() == 209);
  CHECK(runs[0]["usage"]["cost"].Num() == doctest::Approx(0.0123));
  CHECK(runs[2]["run_id"].Str() == "r-plain");
  CHECK(runs[2]["usage"]["prompt_tokens"].Int() == 0);
  CHECK(runs[2]["usage"]["cost"].Num() == 0);
}

TEST_CASE("runs: usage columns only when a listed run has usage" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  WriteSampleRuns(box.db(), false, true);
  std::string both = Ok(box, {"runs"});
  INFO(both);
  CHECK(Has(LineStarting(both, "RUN"), "TOKENS"));
  CHECK_FALSE(Has(both, "COST"));

  Sandbox plain(KEEL_BIN);
  WriteSampleRuns(plain.db(), false, false);
  std::string none = Ok(plain, {"runs"});
  INFO(none);
  CHECK(Has(none, "r-plain"));
  CHECK_FALSE(Has(none, "TOKENS"));
  CHECK(plain.Runs()[0]["usage"]["completion_tokens"].IsNumber());
}

const char kPlainFlow[] = R"lua(local keel = require "keel"
keel.provider "m" { kind = "mock" }
return keel.workflow "plain" { keel.fn "only" { run = function() return 1 end } }
)lua";

TEST_CASE("run, resume: bad LLM option values exit 2 naming option and value" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("plain.lua", kPlainFlow);
  struct Bad {
    std::string option, value, says;
  };
  const Bad bad[] = {
      {"--provider", "m", "expected NAME=URL"},
      {"--provider", "=http://x", "name before '=' is empty"},
      {"--provider", "m m=http://x", "holds only letters"},
      {"--provider", "m=ftp://x", "must start with http:// or https://"},
      {"--provider", "m=http://", "must start with http:// or https://"},
      {"--max-tokens", "0", "whole number of tokens"},
      {"--max-tokens", "1.5", "whole number of tokens"},
      {"--max-tokens", "lots", "whole number of tokens"},
      {"--max-cost", "0", "cost above 0"},
      {"--max-cost", "-1", "cost above 0"},
      {"--max-cost", "inf", "cost above 0"},
      {"--max-cost", "cheap", "cost above 0"},
  };
  for (const Bad& b : bad) {
    CAPTURE(b.option);
    CAPTURE(b.value);
    for (const char* command : {"run", "resume"}) {
      CAPTURE(command);
      std::string target = std::string(command) == "run" ? wf : "no-such-run";
      ExitInfo r = box.KeelDb({command, target, b.option, b.value});
      INFO(r.Describe());
      CHECK(r.exit_code == 2);
      CHECK(Has(r.err, "keel: " + b.option + ": "));
      CHECK(Has(r.err, "'" + b.value + "'"));
      CHECK(Has(r.err, b.says));
    }
  }
}

TEST_CASE("run: good LLM option values are accepted" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("plain.lua", kPlainFlow);
  ExitInfo r =
      box.KeelDb({"run", wf, "--provider", "m=http://127.0.0.1:9/v1", "--provider",
                  "m=https://example.invalid/v1", "--max-tokens", "1000", "--max-cost", "0.25"});
  INFO(r.Describe());
  CHECK(r.exit_code == 0);
  // Without LLM calls, no usage line.
  CHECK_FALSE(Has(r.err, "tokens:"));

  // The URLs reach the loader, which knows no provider 'nope'.
  ExitInfo unknown = box.KeelDb({"run", wf, "--provider", "nope=http://127.0.0.1:9/v1"});
  INFO(unknown.Describe());
  CHECK(unknown.exit_code == 2);
  CHECK(Has(unknown.err, "nope"));
}

// Two agent calls on the mock provider: 1,234 tokens, then 15.
const char kSpendFlow[] = R"lua(local keel = require "keel"
keel.provider "m" { kind = "mock", prices = { input = 1, output = 2 } }
return keel.workflow "spend" {
  budget = { tokens = 1000 },
  keel.agent "ask" { provider = "m", model = "mock-1", prompt = "hello [[mock:tokens=1000,234]]" },
  keel.agent "again" { provider = "m", model = "mock-1", after = { "ask" },
                       prompt = "more [[mock:tokens=10,5]]" },
}
)lua";

TEST_CASE("run, resume: budgets from the command line" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("spend.lua", kSpendFlow);

  // The workflow's own token budget stops the run; --max-cost leaves it.
  ExitInfo declared = box.KeelDb({"run", wf, "--max-cost", "100"});
  INFO(declared.Describe());
  CHECK(declared.exit_code == 1);
  CHECK(Has(declared.out, "error: token budget exceeded: 1234 tokens spent, limit 1000\n"));
  CHECK(Has(declared.err, "tokens: 1,234 (prompt 1,000 + completion 234), cost 0.0015\n"));
  std::string run_id = RunIdFromStderr(declared.err);
  REQUIRE_FALSE(run_id.empty());

  // A cost limit from the command line stops it too.
  ExitInfo cost = box.KeelDb({"run", wf, "--max-tokens", "5000", "--max-cost", "0.001", "--json"});
  INFO(cost.Describe());
  CHECK(cost.exit_code == 1);
  Json report = Json::Parse(cost.out);
  CHECK(Has(report["error"].Str(), "cost budget exceeded"));
  CHECK(report["usage"]["prompt_tokens"].Int() == 1000);
  CHECK(report["usage"]["calls"].Int() == 1);

  // --max-tokens replaces the declared limit: resume finishes the run, and
  // its usage counts the earlier attempt's calls.
  ExitInfo resumed = box.KeelDb({"resume", run_id, "--max-tokens", "5000"});
  INFO(resumed.Describe());
  CHECK(resumed.exit_code == 0);
  CHECK(Has(resumed.err, "tokens: 1,249 (prompt 1,010 + completion 239)"));
  Json show = box.Show(run_id);
  CHECK(show["usage"]["calls"].Int() == 2);
}

TEST_CASE("show: time queued behind a provider's limits is not counted as call time" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  {
    RunWriter w(box.db());
    w.Run("r-queued", 1000, RunStatus::kSucceeded, "");
    w.Node("r-queued", "plan", NodeStatus::kSucceeded, 1);
    // Two calls of 1.5 s from start to end, of which 1 s waited at the gate.
    for (int i = 0; i < 2; ++i) {
      std::string data = CallData("openai", 10, 5, 0, 1.5, 200, 0, "ok");
      data.insert(data.size() - 1, R"(,"queued":1)");
      w.Event("r-queued", "plan", "llm_call", data);
    }
  }
  std::string out = Ok(box, {"show", "r-queued"});
  INFO(out);
  CHECK(Has(out, "llm calls 2, taking 1s in all, plus 2s queued behind provider limits\n"));
  Json total = box.Show("r-queued")["usage"];
  CHECK(total["seconds"].Num() == doctest::Approx(1));
  CHECK(total["queued_s"].Num() == doctest::Approx(2));
  std::string events = Ok(box, {"show", "r-queued", "--events"});
  CHECK(Has(events, "0.5s (after 1s queued)"));
}

}  // namespace
}  // namespace keel::testing
