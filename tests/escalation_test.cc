// A workflow's on_failure (engine/escalation.h) in the executor, without
// Lua: who escalates, what the escalation sees and records, that it runs
// once and never escalates itself, and the load-time checks.

#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "engine/escalation.h"
#include "engine/executor.h"
#include "engine/fake_clock.h"
#include "engine/wait_node.h"
#include "tests/fakes/fn_body.h"
#include "tests/fakes/memory_store.h"
#include "tests/fakes/node_spec.h"

namespace keel {
namespace {

using testing::MemoryStore;
using testing::Node;
using testing::BodyFn;
using testing::FnBody;

std::shared_ptr<FnBody> Returns(const std::string& json) {
  return std::make_shared<FnBody>(
      [json](const NodeContext&) { return NodeResult::Success(MakeJson(json)); });
}

std::shared_ptr<FnBody> Fails(ErrorKind kind, const std::string& message) {
  return std::make_shared<FnBody>(
      [kind, message](const NodeContext&) { return NodeResult::Failure(Status::Error(kind, message)); });
}

// Records what the escalation's node saw: ctx.failure, params, run id and name.
struct Seen {
  Mutex mu;
  std::vector<std::string> failures GUARDED_BY(mu);
  std::vector<std::string> params GUARDED_BY(mu);
  std::vector<std::string> nodes GUARDED_BY(mu);
  std::vector<std::string> run_ids GUARDED_BY(mu);
};

std::shared_ptr<FnBody> Notes(Seen* seen) {
  return std::make_shared<FnBody>([seen](const NodeContext& ctx) {
    MutexLock lock(&seen->mu);
    seen->failures.push_back(ctx.failure ? *ctx.failure : "null");
    seen->params.push_back(*ctx.params);
    seen->nodes.push_back(ctx.node);
    seen->run_ids.push_back(ctx.run_id);
    return NodeResult::Success(MakeJson("\"sent\""));
  });
}

WorkflowSpec Workflow(std::string name, std::vector<NodeSpec> nodes, std::string on_failure = "") {
  WorkflowSpec wf;
  wf.name = std::move(name);
  wf.where = "flow.lua:1";
  wf.nodes = std::move(nodes);
  wf.on_failure = std::move(on_failure);
  return wf;
}

struct Fixture {
  FakeClock clock;
  MemoryStore store;
  Executor executor{&clock, &store, nullptr};
  std::vector<WorkflowSpec> library;

  RunOutcome Run(int main, const RunHistory& history = {}) {
    ExecutorOptions options;
    options.workers = 2;
    options.library = &library;
    RunOutcome out = executor.Run(library[main], "r1", MakeJson(R"({"who":"ann"})"), {}, options,
                                  history);
    REQUIRE(store.Flush().ok());
    return out;
  }
  std::vector<std::string> EventKinds() {
    std::vector<std::string> kinds;
    auto events = store.GetEvents("r1");
    for (const EventRecord& e : *events) {
      if (e.node.empty()) kinds.push_back(e.kind);
    }
    return kinds;
  }
  std::optional<NodeRecord> Record(const std::string& node) {
    auto nodes = store.GetNodes("r1");
    for (NodeRecord& rec : *nodes) {
      if (rec.node == node) return rec;
    }
    return std::nullopt;
  }
};

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a failed run runs its on_failure workflow once, recorded in the run" *
          doctest::timeout(30)) {
  Fixture f;
  Seen seen;
  WorkflowSpec notify = Workflow("notify", {Node("send", {}, Notes(&seen))});
  notify.params = MakeJson(R"({"channel":"#ops","who":"default"})");
  f.library.push_back(notify);
  f.library.push_back(Workflow("main",
                               {Node("a", {}, Returns("1")),
                                Node("b", {"a"}, Fails(ErrorKind::kTransient, "upstream 503")),
                                Node("c", {"b"}, Returns("3"))},
                               "notify"));
  RunOutcome out = f.Run(1);

  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.error == "b: transient: upstream 503");
  CHECK(out.failed_node == 1);
  CHECK(out.escalation == "notify");
  CHECK(out.escalation_status == RunStatus::kSucceeded);
  MutexLock lock(&seen.mu);
  REQUIRE(seen.failures.size() == 1);
  const std::string& failure = seen.failures[0];
  CHECK(Has(failure, R"("run_id":"r1")"));
  CHECK(Has(failure, R"("workflow":"main")"));
  CHECK(Has(failure, R"("escalation":1)"));
  CHECK(Has(failure, R"("node":"b","kind":"transient","message":"upstream 503","attempts":1)"));
  CHECK(Has(failure, R"("failed":[{"node":"b","kind":"transient")"));
  // The run's params over the escalation workflow's defaults.
  CHECK(seen.params[0] == R"({"channel":"#ops","who":"ann"})");
  CHECK(seen.nodes[0] == "on_failure#1/send");
  CHECK(seen.run_ids[0] == "r1");

  auto send = f.Record("on_failure#1/send");
  REQUIRE(send);
  CHECK(send->status == NodeStatus::kSucceeded);
  CHECK(send->output_json == std::optional<std::string>("\"sent\""));
  CHECK(f.EventKinds() == std::vector<std::string>{"escalation_started", "escalation_finished"});
}

TEST_CASE("runs that succeed, degrade or are stopped do not escalate" * doctest::timeout(30)) {
  Fixture f;
  auto send = Returns("1");
  f.library.push_back(Workflow("notify", {Node("send", {}, send)}));
  f.library.push_back(Workflow("ok", {Node("a", {}, Returns("1"))}, "notify"));
  f.library.push_back(Workflow(
      "degraded", {Node("a", {}, Fails(ErrorKind::kError, "x"), /*optional=*/true)}, "notify"));
  CHECK(f.Run(1).status == RunStatus::kSucceeded);
  CHECK(f.Run(2).status == RunStatus::kDegraded);

  // Stopped as a whole (keel cancel, a budget, storage): no escalation.
  Fixture g;
  g.library.push_back(Workflow("notify", {Node("send", {}, send)}));
  auto stop = std::make_shared<FnBody>([&g](const NodeContext&) {
    g.executor.Stop("cancelled by keel cancel");
    return NodeResult::Failure(Status::Error(ErrorKind::kCancelled, "stopped"));
  });
  g.library.push_back(Workflow("main", {Node("a", {}, stop)}, "notify"));
  RunOutcome out = g.Run(1);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.escalation.empty());
  CHECK(send->calls.load() == 0);
  CHECK(f.EventKinds().empty());
  CHECK(g.EventKinds().empty());
}

TEST_CASE("a failing escalation is recorded failed and escalates nothing" * doctest::timeout(30)) {
  Fixture f;
  auto page = Returns("1");
  auto send = Fails(ErrorKind::kPermanent, "smtp refused");
  f.library.push_back(Workflow("pager", {Node("page", {}, page)}));
  // notify has an on_failure of its own: used when notify runs as a run,
  // never while it escalates.
  f.library.push_back(Workflow("notify", {Node("send", {}, send)}, "pager"));
  f.library.push_back(Workflow("main", {Node("a", {}, Fails(ErrorKind::kError, "boom"))}, "notify"));
  RunOutcome out = f.Run(2);
  CHECK(out.status == RunStatus::kFailed);
  CHECK(out.error == "a: error: boom");
  CHECK(out.escalation_status == RunStatus::kFailed);
  CHECK(out.escalation_error == "on_failure#1/send: permanent: smtp refused");
  CHECK(send->calls.load() == 1);
  CHECK(page->calls.load() == 0);
  auto record = f.Record("on_failure#1/send");
  REQUIRE(record);
  CHECK(record->status == NodeStatus::kFailed);
  CHECK(f.EventKinds() == std::vector<std::string>{"escalation_started", "escalation_finished"});
  auto events = f.store.GetEvents("r1");
  CHECK(Has(events->back().data_json, R"("status":"failed")"));
}

TEST_CASE("a resumed run's escalation is numbered after the earlier ones" * doctest::timeout(30)) {
  Fixture f;
  Seen seen;
  f.library.push_back(Workflow("notify", {Node("send", {}, Notes(&seen))}));
  f.library.push_back(Workflow("main", {Node("a", {}, Fails(ErrorKind::kError, "again"))}, "notify"));
  RunHistory history;
  history.escalations = 1;
  RunOutcome out = f.Run(1, history);
  CHECK(out.escalation == "notify");
  CHECK(f.Record("on_failure#2/send"));
  CHECK_FALSE(f.Record("on_failure#1/send"));
  MutexLock lock(&seen.mu);
  REQUIRE(seen.failures.size() == 1);
  CHECK(Has(seen.failures[0], R"("escalation":2)"));
}

TEST_CASE("on_failure is checked across the file's workflows") {
  auto body = Returns("1");
  std::vector<WorkflowSpec> workflows;
  workflows.push_back(Workflow("notify", {Node("send", {}, body)}));
  workflows.push_back(Workflow("main", {Node("a", {}, body)}, "notfy"));
  auto problems = ValidateEscalations(workflows);
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].ToString() ==
        "flow.lua:1: workflow 'main': on_failure 'notfy' is not a workflow declared in this file "
        "(did you mean 'notify'?)");

  workflows[1].on_failure = "main";
  problems = ValidateEscalations(workflows);
  REQUIRE(problems.size() == 1);
  CHECK(Has(problems[0].message, "on_failure names the workflow itself"));

  workflows[1].on_failure = "notify";
  workflows[1].nodes.push_back(Node("on_failure", {}, body));
  workflows[1].nodes.back().where = "flow.lua:9";
  problems = ValidateEscalations(workflows);
  REQUIRE(problems.size() == 1);
  CHECK(Has(problems[0].ToString(), "flow.lua:9: node 'on_failure': the name 'on_failure' is kept"));

  workflows[1].nodes.pop_back();
  NodeSpec wait;
  wait.name = "approve";
  wait.where = "flow.lua:4";
  wait.wait = std::make_shared<WaitSpec>();
  workflows[0].nodes.push_back(wait);
  problems = ValidateEscalations(workflows);
  REQUIRE(problems.size() == 1);
  CHECK(Has(problems[0].ToString(), "flow.lua:4: node 'approve': workflow 'notify' is the "
                                    "on_failure of 'main' and cannot wait"));

  workflows[0].nodes.pop_back();
  CHECK(ValidateEscalations(workflows).empty());
}

}  // namespace keel
