// The crash-safety property under fire: a ~1,000-node layered DAG is killed
// with SIGKILL 50 times at random moments and resumed each time. After every
// kill the test reads the database itself and checks that:
//  - a node recorded succeeded is never run again (its side-effect count
//    stays frozen from that kill on),
//  - the recorded set of succeeded nodes only grows and is closed under
//    dependencies, their recorded outputs are right, and the file passes
//    SQLite's integrity check;
// and at the end that the run succeeded, every node ran at least once and
// every output equals that of an uninterrupted reference run.

#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"

namespace keel::testing {
namespace {

constexpr int kLayers = 40;
constexpr int kWidth = 25;
constexpr int kKills = 50;
constexpr unsigned kSeed = 20240611;
constexpr auto kWait = std::chrono::seconds(60);

// Node name -> the names it depends on; every layer depends on 2-3 nodes of the one before.
using Dag = std::map<std::string, std::vector<std::string>>;

std::string Name(int layer, int index) {
  return "n" + std::to_string(layer) + "_" + std::to_string(index);
}

Dag MakeDag(std::mt19937& rng) {
  Dag dag;
  for (int layer = 0; layer < kLayers; ++layer) {
    for (int i = 0; i < kWidth; ++i) {
      std::vector<std::string>& deps = dag[Name(layer, i)];
      if (layer == 0) continue;
      std::vector<int> picks(kWidth);
      for (int j = 0; j < kWidth; ++j) picks[j] = j;
      std::shuffle(picks.begin(), picks.end(), rng);
      int count = 2 + static_cast<int>(rng() % 2);
      for (int j = 0; j < count; ++j) deps.push_back(Name(layer - 1, picks[j]));
    }
  }
  return dag;
}

// Each node logs its name, waits a little without blocking, and returns a
// number computed from its name and its dependencies' outputs.
std::string Script(const Dag& dag, const std::string& log) {
  std::string lua = R"lua(local keel = require "keel"
local LOG = ")lua" + log +
                    R"lua("
local function node(name, after)
  return keel.fn(name) {
    after = after,
    run = function(ctx)
      local f = assert(io.open(LOG, "a"))
      f:write(name, "\n")
      f:close()
      keel.sleep(0.002)
      local acc = 7
      for _, d in ipairs(after) do acc = (acc * 31 + ctx.deps[d]) % 1000003 end
      for i = 1, #name do acc = (acc * 131 + name:byte(i)) % 1000003 end
      return acc
    end,
  }
end
return keel.workflow "layers" {
)lua";
  for (int layer = 0; layer < kLayers; ++layer) {
    for (int i = 0; i < kWidth; ++i) {
      std::string name = Name(layer, i);
      lua += "  node(\"" + name + "\", {";
      for (const std::string& dep : dag.at(name)) lua += "\"" + dep + "\",";
      lua += "}),\n";
    }
  }
  return lua + "}\n";
}

// Node name -> compact JSON output, from `keel show --json`.
std::map<std::string, std::string> Outputs(const Json& show) {
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < show["nodes"].Size(); ++i) {
    out[show["nodes"][i]["node"].Str()] = show["nodes"][i]["output"].Dump();
  }
  return out;
}

// What the database holds after a kill, read straight from it.
struct Snapshot {
  std::map<std::string, std::string> succeeded;  // node -> its output, as compact JSON
  std::string integrity;                         // PRAGMA integrity_check: "ok"
};

Snapshot ReadSnapshot(const std::string& db, const std::string& run_id) {
  SqliteDb sqlite(db, /*create=*/false);
  Snapshot snapshot;
  snapshot.integrity = sqlite.Query("PRAGMA integrity_check")[0][0];
  for (auto& row : sqlite.Query(
           "SELECT node, output_json FROM nodes WHERE run_id = ?1 AND status = 'succeeded'",
           {run_id})) {
    snapshot.succeeded[row[0]] = Json::Parse(row[1]).Dump();
  }
  return snapshot;
}

void RemoveRunFiles(const Sandbox& box, const std::string& log) {
  for (const std::string& path : {box.db(), box.db() + "-wal", box.db() + "-shm", log}) {
    std::filesystem::remove(path);
  }
}

TEST_CASE("50 random kill -9s and resumes never redo a recorded node" * doctest::timeout(300)) {
  std::mt19937 rng(kSeed);
  const Dag dag = MakeDag(rng);
  REQUIRE(dag.size() == static_cast<size_t>(kLayers * kWidth));

  // Reference: the same workflow, uninterrupted, in its own database.
  Sandbox reference(KEEL_BIN);
  std::string ref_file = reference.Write("layers.lua", Script(dag, reference.Path("log")));
  auto ref_start = std::chrono::steady_clock::now();
  ExitInfo ref = reference.KeelDb({"run", ref_file, "--workers", "2"}, kWait);
  // Used only to scale the kill delays, never asserted on.
  auto ref_duration = std::chrono::steady_clock::now() - ref_start;
  REQUIRE_MESSAGE(ref.exit_code == 0, ref.Describe());
  const std::map<std::string, std::string> expected =
      Outputs(reference.Show(RunIdFromStderr(ref.err)));
  REQUIRE(expected.size() == dag.size());

  Sandbox box(KEEL_BIN);
  const std::string log = box.Path("log");
  const std::string file = box.Write("layers.lua", Script(dag, log));
  const auto max_delay =
      std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(ref_duration / 15),
                 std::chrono::milliseconds(10), std::chrono::milliseconds(400));
  MESSAGE("reference run: " << std::chrono::duration<double>(ref_duration).count()
                            << " s; kill delays up to " << max_delay.count() << " ms");

  std::string id;
  std::set<std::string> durable;      // recorded succeeded at the last kill
  std::map<std::string, int> frozen;  // log count of each durable node when first seen
  int kills = 0, partial_kills = 0;
  bool finished = false;
  for (int k = 0; k < kKills && !finished; ++k) {
    CAPTURE(k);
    std::unique_ptr<Subprocess> child = id.empty() ? box.StartDb({"run", file, "--workers", "2"})
                                                   : box.StartDb({"resume", id, "--workers", "2"});
    if (rng() % 5 == 0) {
      // Sometimes kill during start-up, before the run line.
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 30));
    } else {
      child->WaitForStderr(id.empty() ? " started: " : " resumed: ", kWait);
      std::this_thread::sleep_for(std::chrono::milliseconds(rng() % (max_delay.count() + 1)));
    }
    ExitInfo ended = child->Kill();
    if (ended.signal != SIGKILL) {  // it finished before the kill
      REQUIRE_MESSAGE(ended.exit_code == 0, ended.Describe());
      if (id.empty()) id = RunIdFromStderr(ended.err);
      finished = true;
      break;
    }
    ++kills;
    if (id.empty()) id = RunIdFromStderr(ended.err);
    if (id.empty()) {  // killed before the run was announced: start from scratch
      RemoveRunFiles(box, log);
      continue;
    }

    Snapshot snapshot = ReadSnapshot(box.db(), id);
    CHECK(snapshot.integrity == "ok");
    std::set<std::string> now;
    for (const auto& [node, output] : snapshot.succeeded) now.insert(node);
    std::map<std::string, int> counts = CountLines(ReadFile(log).value_or(""));
    if (!now.empty() && now.size() < dag.size()) ++partial_kills;
    CHECK(std::includes(now.begin(), now.end(), durable.begin(), durable.end()));
    for (const auto& entry : snapshot.succeeded) {
      const std::string& node = entry.first;
      const std::string& output = entry.second;
      CAPTURE(node);
      CHECK(output == expected.at(node));
      for (const std::string& dep : dag.at(node)) {
        CAPTURE(dep);
        CHECK(now.count(dep) == 1);  // closed under dependencies
      }
      CHECK(counts[node] >= 1);
      auto [it, first_seen] = frozen.emplace(node, counts[node]);
      if (!first_seen) CHECK(counts[node] == it->second);
    }
    durable = std::move(now);
  }
  MESSAGE(kills << " kills, " << partial_kills << " with the run partly recorded");
  REQUIRE(!id.empty());

  if (!finished) {
    ExitInfo last = box.KeelDb({"resume", id, "--workers", "2"}, kWait);
    REQUIRE_MESSAGE(last.exit_code == 0, last.Describe());
  }

  Json show = box.Show(id);
  CHECK(show["status"].Str() == "succeeded");
  std::map<std::string, std::string> outputs = Outputs(show);
  std::map<std::string, int> counts = CountLines(ReadFile(log).value_or(""));
  int wrong_outputs = 0, never_ran = 0, rerun_after_recorded = 0;
  for (const auto& [node, deps] : dag) {
    if (outputs[node] != expected.at(node)) ++wrong_outputs;
    if (counts[node] < 1) ++never_ran;
    auto it = frozen.find(node);
    if (it != frozen.end() && counts[node] != it->second) ++rerun_after_recorded;
  }
  CHECK(wrong_outputs == 0);
  CHECK(never_ran == 0);
  CHECK(rerun_after_recorded == 0);
  CHECK(counts.size() == dag.size());  // nothing else in the log
}

}  // namespace
}  // namespace keel::testing
