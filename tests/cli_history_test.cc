// History commands end to end: `keel runs`, `keel show`, `keel graph` and
// `keel gc`, and several keel processes sharing one database.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;
constexpr auto kWait = std::chrono::seconds(30);

const char kGood[] = R"lua(local keel = require "keel"
return keel.workflow "good" {
  keel.fn "fetch" { run = function() return 1 end },
  keel.fn "parse" { after = { "fetch" }, run = function(ctx) return ctx.deps.fetch + 1 end },
  keel.fn "store" { after = { "parse" }, run = function(ctx) return ctx.deps.parse + 1 end },
}
)lua";

const char kBad[] = R"lua(local keel = require "keel"
return keel.workflow "bad" {
  keel.fn "fetch" { run = function() return 1 end },
  keel.fn "parse" { after = { "fetch" }, run = function() error("malformed") end },
}
)lua";

// A workflow whose only node waits until `go` exists.
std::string Blocked(const std::string& go) {
  return R"lua(local keel = require "keel"
return keel.workflow "blocked" {
  keel.fn "wait" { run = function()
    for i = 1, 6000 do
      local f = io.open(")lua" +
         go + R"lua(", "r")
      if f then f:close() return "released" end
      keel.sleep(0.01)
    end
    error("never released")
  end },
}
)lua";
}

// Runs `file` to completion and returns its run id.
std::string RunToEnd(const Sandbox& box, const std::string& file, int expected_exit) {
  ExitInfo r = box.KeelDb({"run", file});
  INFO(r.Describe());
  REQUIRE(r.exit_code == expected_exit);
  std::string id = RunIdFromStderr(r.err);
  REQUIRE(!id.empty());
  return id;
}

// Starts `file` and waits for its `started` line; returns the run id.
std::string StartRun(const Sandbox& box, const std::string& file,
                     std::unique_ptr<Subprocess>* child) {
  *child = box.StartDb({"run", file});
  bool started = (*child)->WaitForStderr(" started: ", kWait);
  INFO((*child)->Stderr());
  REQUIRE(started);
  return RunIdFromStderr((*child)->Stderr());
}

// The shortest prefix of `id` that no id in `others` shares.
std::string UniquePrefix(const std::string& id, const std::vector<std::string>& others) {
  size_t len = 1;
  for (const std::string& other : others) {
    if (other == id) continue;
    size_t common = 0;
    while (common < id.size() && common < other.size() && id[common] == other[common]) ++common;
    len = std::max(len, common + 1);
  }
  return id.substr(0, std::min(len, id.size()));
}

// The edges of a mermaid flowchart as "from -> to" by node label; a node
// declared as `id["label<br/>status"]` is known by its label.
std::set<std::string> MermaidEdges(const std::string& mermaid) {
  std::map<std::string, std::string> label;
  static const std::regex kNode(R"re((\w+)\["([^"<]*))re");
  for (std::sregex_iterator it(mermaid.begin(), mermaid.end(), kNode), end; it != end; ++it) {
    label[(*it)[1].str()] = (*it)[2].str();
  }
  auto name = [&](const std::string& id) { return label.count(id) ? label[id] : id; };
  std::set<std::string> edges;
  static const std::regex kEdge(R"re((\w+)(\[[^\]]*\])?\s*-->\s*(\w+))re");
  for (std::sregex_iterator it(mermaid.begin(), mermaid.end(), kEdge), end; it != end; ++it) {
    edges.insert(name((*it)[1].str()) + " -> " + name((*it)[3].str()));
  }
  return edges;
}

TEST_CASE("runs: a table and --json with status filter and limit" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string good = RunToEnd(box, box.Write("good.lua", kGood), 0);
  std::string bad = RunToEnd(box, box.Write("bad.lua", kBad), 1);

  ExitInfo table = box.KeelDb({"runs"});
  INFO(table.Describe());
  REQUIRE(table.exit_code == 0);
  CHECK(std::regex_search(table.out,
                          std::regex(R"(RUN +WORKFLOW +STATUS +STARTED +ACTIVE +ELAPSED +NODES)")));
  CHECK(std::regex_search(table.out, std::regex(R"(\bgood +succeeded\b[^\n]*\b3/3\b)")));
  CHECK(std::regex_search(table.out, std::regex(R"(\bbad +failed\b[^\n]*\b1/2\b)")));

  Json all = box.Runs();
  REQUIRE(all.Size() == 2);
  CHECK(all[0]["run_id"].Str() == bad);  // newest first
  CHECK(all[1]["run_id"].Str() == good);
  CHECK(all[1]["workflow"].Str() == "good");
  CHECK(all[1]["status"].Str() == "succeeded");
  CHECK(all[1]["nodes_done"].Int() == 3);
  CHECK(all[1]["nodes_total"].Int() == 3);
  CHECK(all[1]["duration_s"].IsNumber());
  CHECK(all[1]["error"].IsNull());
  CHECK(std::regex_match(all[1]["started_at"].Str(),
                         std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)")));
  CHECK(all[0]["status"].Str() == "failed");
  CHECK(all[0]["nodes_done"].Int() == 1);
  CHECK(all[0]["nodes_total"].Int() == 2);
  CHECK(all[0]["error"].Str().find("malformed") != std::string::npos);

  Json failed = box.Runs({"--status", "failed"});
  REQUIRE(failed.Size() == 1);
  CHECK(failed[0]["run_id"].Str() == bad);

  ExitInfo limited = box.KeelDb({"runs", "--json", "--limit", "1"});
  INFO(limited.Describe());
  REQUIRE(limited.exit_code == 0);
  Json one = Json::Parse(limited.out);
  REQUIRE(one.Size() == 1);
  CHECK(one[0]["run_id"].Str() == bad);

  ExitInfo bad_status = box.KeelDb({"runs", "--status", "sleepy"});
  INFO(bad_status.Describe());
  CHECK(bad_status.exit_code == 2);
}

TEST_CASE("runs on a missing database says so, exits 0 and creates nothing" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ExitInfo r = box.KeelDb({"runs"});
  INFO(r.Describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
  CHECK(r.err.find("no runs (no database at ") != std::string::npos);
  CHECK(r.err.find(box.db()) != std::string::npos);
  CHECK_FALSE(FileExists(box.db()));
}

TEST_CASE("show: a table, --json, --events, and run id prefixes" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string good = RunToEnd(box, box.Write("good.lua", kGood), 0);
  std::string bad = RunToEnd(box, box.Write("bad.lua", kBad), 1);

  ExitInfo table = box.KeelDb({"show", bad});
  INFO(table.Describe());
  REQUIRE(table.exit_code == 0);
  CHECK(table.out.find(bad) != std::string::npos);
  CHECK(table.out.find("malformed") != std::string::npos);
  CHECK(table.out.find(box.Path("bad.lua")) != std::string::npos);
  CHECK(std::regex_search(table.out, std::regex(R"(NODE +STATUS +ATTEMPTS +DURATION +ERROR)")));
  CHECK(std::regex_search(table.out, std::regex(R"(\bfetch +succeeded +1\b)")));
  CHECK(std::regex_search(table.out, std::regex(R"(\bparse +failed +1\b[^\n]*malformed)")));
  CHECK(table.out.find("fetch") < table.out.rfind("parse"));  // workflow order

  Json show = box.Show(good);
  CHECK(show["run_id"].Str() == good);
  CHECK(show["workflow"].Str() == "good");
  CHECK(show["status"].Str() == "succeeded");
  CHECK(show["script_path"].Str() == box.Path("good.lua"));
  CHECK(show["script_sha256"].Str().size() == 64);
  CHECK(show["params"].IsObject());
  CHECK(show["error"].IsNull());
  CHECK(show["events"].IsNull());  // only with --events
  REQUIRE(show["nodes"].Size() == 3);
  const char* order[] = {"fetch", "parse", "store"};
  for (size_t i = 0; i < 3; ++i) {
    CAPTURE(i);
    CHECK(show["nodes"][i]["node"].Str() == order[i]);
    CHECK(show["nodes"][i]["status"].Str() == "succeeded");
    CHECK(show["nodes"][i]["attempts"].Int() == 1);
    CHECK(show["nodes"][i]["output"].Int() == static_cast<int64_t>(i + 1));
  }

  Json with_events = box.Show(good, true);
  Json events = with_events["events"];
  REQUIRE(events.Size() > 0);
  bool fetch_started = false, fetch_succeeded = false;
  int64_t last_seq = 0;
  for (size_t i = 0; i < events.Size(); ++i) {
    CHECK(events[i]["seq"].Int() > last_seq);
    last_seq = events[i]["seq"].Int();
    if (events[i]["node"].Str() != "fetch") continue;
    fetch_started |= events[i]["kind"].Str().find("started") != std::string::npos;
    fetch_succeeded |= events[i]["kind"].Str().find("succeeded") != std::string::npos;
  }
  CHECK(fetch_started);
  CHECK(fetch_succeeded);

  ExitInfo event_table = box.KeelDb({"show", good, "--events"});
  INFO(event_table.Describe());
  CHECK(event_table.exit_code == 0);
  CHECK(std::regex_search(event_table.out, std::regex(R"(seq +time +node +kind +severity +data)")));

  std::string prefix = UniquePrefix(good, {good, bad});
  CAPTURE(prefix);
  CHECK(box.Show(prefix)["run_id"].Str() == good);

  ExitInfo unknown = box.KeelDb({"show", "no-such-run"});
  INFO(unknown.Describe());
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.err.find("no-such-run") != std::string::npos);
}

TEST_CASE("show lists nodes in workflow order, not in the order they finished" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string id = RunToEnd(box, box.Write("order.lua", R"lua(local keel = require "keel"
return keel.workflow "order" {
  keel.fn "slow" { run = function() keel.sleep(0.2) return 1 end },
  keel.fn "middle" { after = { "slow" }, run = function() return 2 end },
  keel.fn "fast" { run = function() return 3 end },
}
)lua"),
                            0);
  Json nodes = box.Show(id)["nodes"];
  REQUIRE(nodes.Size() == 3);
  CHECK(nodes[0]["node"].Str() == "slow");
  CHECK(nodes[1]["node"].Str() == "middle");
  CHECK(nodes[2]["node"].Str() == "fast");

  ExitInfo table = box.KeelDb({"show", id});
  INFO(table.Describe());
  REQUIRE(table.exit_code == 0);
  CHECK(std::regex_search(table.out, std::regex(R"(\nslow [^\n]*\nmiddle [^\n]*\nfast )")));
}

TEST_CASE("graph: dot and mermaid of a file and of a run" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string file = box.Write("diamond.lua", R"lua(local keel = require "keel"
return keel.workflow "diamond" {
  keel.fn "source" { run = function() return 1 end },
  keel.fn "left" { after = { "source" }, run = function() return 2 end },
  keel.fn "right" { after = { "source" }, run = function() error("no") end },
  keel.fn "sink" { after = { "left", "right" }, run = function() return 4 end },
}
)lua");
  const std::vector<std::pair<std::string, std::string>> edges = {
      {"source", "left"}, {"source", "right"}, {"left", "sink"}, {"right", "sink"}};
  auto check_dot = [&](const std::string& dot) {
    CHECK(dot.find("digraph") != std::string::npos);
    for (const auto& edge : edges) {
      const std::string& from = edge.first;
      const std::string& to = edge.second;
      CAPTURE(from);
      CAPTURE(to);
      CHECK(std::regex_search(dot, std::regex("\"?" + from + "\"?\\s*->\\s*\"?" + to + "\\b")));
    }
  };
  auto check_mermaid = [&](const std::string& mermaid) {
    CHECK(std::regex_search(mermaid, std::regex(R"(^(graph|flowchart) )")));
    std::set<std::string> found = MermaidEdges(mermaid);
    for (const auto& edge : edges) {
      const std::string& from = edge.first;
      const std::string& to = edge.second;
      CAPTURE(from);
      CAPTURE(to);
      CHECK(found.count(from + " -> " + to) == 1);
    }
  };

  ExitInfo dot = box.Keel({"graph", file});
  INFO(dot.Describe());
  REQUIRE(dot.exit_code == 0);
  check_dot(dot.out);

  ExitInfo mermaid = box.Keel({"graph", file, "--format", "mermaid"});
  INFO(mermaid.Describe());
  REQUIRE(mermaid.exit_code == 0);
  check_mermaid(mermaid.out);

  std::string id = RunToEnd(box, file, 1);
  ExitInfo run_dot = box.KeelDb({"graph", id});
  INFO(run_dot.Describe());
  REQUIRE(run_dot.exit_code == 0);
  check_dot(run_dot.out);
  CHECK(run_dot.out != dot.out);  // coloured by status

  ExitInfo run_mermaid = box.KeelDb({"graph", id, "--format", "mermaid"});
  INFO(run_mermaid.Describe());
  REQUIRE(run_mermaid.exit_code == 0);
  check_mermaid(run_mermaid.out);

  ExitInfo bad_format = box.Keel({"graph", file, "--format", "png"});
  INFO(bad_format.Describe());
  CHECK(bad_format.exit_code == 2);
}

TEST_CASE("gc: deletes old finished runs, never a running one" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string good = RunToEnd(box, box.Write("good.lua", kGood), 0);
  std::string bad = RunToEnd(box, box.Write("bad.lua", kBad), 1);
  std::string go = box.Path("go");
  std::unique_ptr<Subprocess> blocked;
  std::string running = StartRun(box, box.Write("blocked.lua", Blocked(go)), &blocked);

  // Old enough for --older-than 1s: wait until both finished runs are more than a second old.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));

  for (const char* bad_duration : {"abc", "10x", "-5s", ""}) {
    CAPTURE(bad_duration);
    ExitInfo r = box.KeelDb({"gc", "--older-than", bad_duration});
    INFO(r.Describe());
    CHECK(r.exit_code == 2);
  }
  CHECK(box.Runs().Size() == 3);

  ExitInfo none = box.KeelDb({"gc", "--older-than", "2w"});
  INFO(none.Describe());
  CHECK(none.exit_code == 0);
  CHECK(none.out == "deleted 0 runs\n");

  ExitInfo gc = box.KeelDb({"gc", "--older-than", "1s"});
  INFO(gc.Describe());
  CHECK(gc.exit_code == 0);
  CHECK(gc.out == "deleted 2 runs\n");
  Json left = box.Runs();
  REQUIRE(left.Size() == 1);
  CHECK(left[0]["run_id"].Str() == running);
  CHECK(box.KeelDb({"show", good}).exit_code == 2);
  CHECK(box.KeelDb({"show", bad}).exit_code == 2);

  WriteFile(go, "");
  ExitInfo finished = blocked->Wait(kWait);
  INFO(finished.Describe());
  CHECK(finished.exit_code == 0);
  Json show = box.Show(running, true);
  CHECK(show["status"].Str() == "succeeded");
  CHECK(show["nodes"][0]["output"].Str() == "released");
  CHECK(show["events"].Size() > 0);
}

// Many nodes with short waits, so that a run keeps writing for a while.
const char kBusy[] = R"lua(local keel = require "keel"
local nodes = {}
for i = 1, 40 do
  nodes[#nodes + 1] = keel.fn("n" .. i) {
    after = i > 4 and { "n" .. (i - 4) } or nil,
    run = function() keel.sleep(0.01) return i end,
  }
end
return keel.workflow "busy" (nodes)
)lua";

// Starts two runs of `file` at once; while they run, calls `keel runs --json`
// (when `read`) and checks that every read works. Both runs must succeed.
void TwoRunsAtOnce(const Sandbox& box, const std::string& file, bool read) {
  std::unique_ptr<Subprocess> first = box.StartDb({"run", file});
  std::unique_ptr<Subprocess> second = box.StartDb({"run", file});
  for (int reads = 0; read && !(first->Exited() && second->Exited()) && reads < 200; ++reads) {
    ExitInfo r = box.KeelDb({"runs", "--json"});
    INFO(r.Describe());
    REQUIRE(r.exit_code == 0);
    if (!r.out.empty()) CHECK(Json::Parse(r.out).IsArray());  // empty: no database yet
  }
  ExitInfo a = first->Wait(kWait);
  ExitInfo b = second->Wait(kWait);
  INFO(a.Describe());
  INFO(b.Describe());
  CHECK(a.exit_code == 0);
  CHECK(b.exit_code == 0);
}

TEST_CASE("two runs started together on a new database both finish" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  TwoRunsAtOnce(box, box.Write("busy.lua", kBusy), false);
  Json runs = box.Runs();
  REQUIRE(runs.Size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    CHECK(runs[i]["status"].Str() == "succeeded");
    CHECK(runs[i]["nodes_done"].Int() == 40);
  }
  CHECK(runs[0]["run_id"].Str() != runs[1]["run_id"].Str());
}

TEST_CASE("`keel runs` reads an existing database while two runs write it" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string file = box.Write("busy.lua", kBusy);
  RunToEnd(box, file, 0);
  TwoRunsAtOnce(box, file, true);
  CHECK(box.Runs().Size() == 3);
}

TEST_CASE("`keel runs` reads a database while two runs create it" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  TwoRunsAtOnce(box, box.Write("busy.lua", kBusy), true);
  CHECK(box.Runs().Size() == 2);
}

}  // namespace
}  // namespace keel::testing
