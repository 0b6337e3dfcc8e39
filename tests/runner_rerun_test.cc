// Runner::Resume with a `from` node and Runner::Fork over a real SqliteStore:
// which nodes run again, which outputs are kept or copied, and that a node
// run again starts without the checkpoints of its earlier executions.

#include <doctest/doctest.h>

#include <map>
#include <memory>
#include <string>

#include "engine/mutex.h"
#include "engine/rerun.h"
#include "engine/runner.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/fakes/node_spec.h"
#include "tests/sqlite_test_util.h"
#include "tests/support/sqlite_db.h"

namespace keel {
namespace {

using testing::Node;
using testing::OpenStore;
using testing::ScratchDir;
using testing::SqliteDb;

constexpr int kTimeoutS = 60;

// Counts its executions per node, records how many checkpoints each
// execution was handed, checkpoints one step, and returns "NAME:PARAM" where
// PARAM is the run's params.v.
class Recorder : public NodeBody {
 public:
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    {
      MutexLock lock(&mu);
      ++runs[ctx.node];
      journals[ctx.node] = static_cast<int>(ctx.journal.size());
    }
    ctx.checkpoint(MakeJson(R"({"step":1})"));
    std::string param = ctx.params->find("\"v\":\"new\"") != std::string::npos ? "new" : "old";
    done(NodeResult::Success(MakeJson("\"" + ctx.node + ":" + param + "\"")));
  }
  std::map<std::string, int> Runs() {
    MutexLock lock(&mu);
    return runs;
  }
  Mutex mu;
  std::map<std::string, int> runs GUARDED_BY(mu);
  std::map<std::string, int> journals GUARDED_BY(mu);
};

// a -> b -> c; d alone.
WorkflowSpec Chain(const std::shared_ptr<Recorder>& body) {
  WorkflowSpec wf;
  wf.name = "chain";
  wf.nodes = {Node("a", {}, body), Node("b", {"a"}, body), Node("c", {"b"}, body),
              Node("d", {}, body)};
  return wf;
}

const ScriptInfo kScript{"/tmp/chain.lua", "00", "return nil", {}};

std::map<std::string, std::string> Outputs(Store* store, const std::string& run_id) {
  std::map<std::string, std::string> outputs;
  auto nodes = store->GetNodes(run_id);
  REQUIRE(nodes.ok());
  for (const NodeRecord& node : *nodes) {
    outputs[node.node] = node.output_json.value_or("-");
  }
  return outputs;
}

TEST_CASE("Resume from a node of a succeeded run runs it and its dependents afresh" *
          doctest::timeout(kTimeoutS)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto body = std::make_shared<Recorder>();
  WorkflowSpec wf = Chain(body);
  ExecutorOptions options;
  options.workers = 2;
  auto store = OpenStore(path);
  Runner runner(SystemClock(), store.get(), nullptr);
  auto first = runner.Start(wf, kScript, MakeJson(R"({"v":"old"})"), options);
  REQUIRE(first.ok());
  REQUIRE(first->status == RunStatus::kSucceeded);
  // The process is gone: its owner record now names one that has ended.
  SqliteDb(path, false).Exec("UPDATE runs SET owner_start = owner_start + 1000000007");

  auto run = store->GetRun(first->run_id);
  REQUIRE(run.ok());
  CHECK_FALSE(runner.Resume(*run, wf, kScript, options, "zz").ok());
  auto again = runner.Resume(*run, wf, kScript, options, "b");
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  CHECK(again->status == RunStatus::kSucceeded);
  CHECK(again->restored == 2);
  CHECK(body->Runs() == std::map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 2}, {"d", 1}});
  {
    MutexLock lock(&body->mu);
    CHECK(body->journals["b"] == 0);  // not the checkpoint of its first execution
    CHECK(body->journals["c"] == 0);
  }
  auto nodes = store->GetNodes(first->run_id);
  for (const NodeRecord& node : *nodes) {
    CHECK(node.attempts == (node.node == "b" || node.node == "c" ? 2 : 1));
  }
}

TEST_CASE("Fork copies the outputs upstream of its node and runs the rest with new params" *
          doctest::timeout(kTimeoutS)) {
  ScratchDir dir;
  auto body = std::make_shared<Recorder>();
  WorkflowSpec wf = Chain(body);
  ExecutorOptions options;
  options.workers = 2;
  auto store = OpenStore(dir.Path("keel.db"));
  Runner runner(SystemClock(), store.get(), nullptr);
  auto first = runner.Start(wf, kScript, MakeJson(R"({"v":"old"})"), options);
  REQUIRE(first.ok());
  auto source = store->GetRun(first->run_id);
  REQUIRE(source.ok());

  CHECK_FALSE(runner.Fork(*source, "zz", wf, kScript, MakeJson(R"({"v":"new"})"), options).ok());
  auto fork = runner.Fork(*source, "b", wf, kScript, MakeJson(R"({"v":"new"})"), options);
  REQUIRE_MESSAGE(fork.ok(), fork.status().ToString());
  CHECK(fork->run_id != first->run_id);
  CHECK(fork->restored == 2);
  CHECK(body->Runs() == std::map<std::string, int>{{"a", 1}, {"b", 2}, {"c", 2}, {"d", 1}});
  CHECK(Outputs(store.get(), fork->run_id) ==
        std::map<std::string, std::string>{
            {"a", "\"a:old\""}, {"b", "\"b:new\""}, {"c", "\"c:new\""}, {"d", "\"d:old\""}});
  auto forked = store->GetRun(fork->run_id);
  CHECK(forked->forked_from == first->run_id);
  CHECK(forked->forked_from_node == "b");
  // The source is untouched.
  CHECK(Outputs(store.get(), first->run_id)["b"] == "\"b:old\"");

  auto all = runner.Fork(*source, "", wf, kScript, MakeJson(R"({"v":"new"})"), options);
  REQUIRE(all.ok());
  CHECK(all->restored == 0);
  CHECK(body->Runs() == std::map<std::string, int>{{"a", 2}, {"b", 3}, {"c", 3}, {"d", 2}});
}

}  // namespace
}  // namespace keel
