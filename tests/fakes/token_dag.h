#pragma once
// Random DAGs whose node bodies leave evidence (store_fault_property_test):
// every execution produces a unique token, records which tokens of its
// dependencies it consumed in a Ledger, and returns both as its output, so
// a check can tell which execution a recorded output came from. Bodies run
// on the executor's threads; the Ledger is thread-safe.

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/mutex.h"
#include "engine/workflow.h"

namespace keel::testing {

// One execution of a node body.
struct Execution {
  std::string node;
  std::string token;
  std::vector<std::string> consumed;  // the dependencies' tokens, in `after` order
  bool failed = false;
  int step = 0;
};

// Every execution of every node of one case. Thread-safe.
class Ledger {
 public:
  std::string Add(const std::string& node, std::vector<std::string> consumed, bool failed) {
    MutexLock lock(&mu_);
    std::string token = node + "#" + std::to_string(next_++);
    executions_.push_back({node, token, std::move(consumed), failed, step_});
    return token;
  }
  bool FailedBefore(const std::string& node) {
    MutexLock lock(&mu_);
    for (const Execution& e : executions_) {
      if (e.node == node && e.failed) return true;
    }
    return false;
  }
  void SetStep(int step) {
    MutexLock lock(&mu_);
    step_ = step;
  }
  std::vector<Execution> Snapshot() {
    MutexLock lock(&mu_);
    return executions_;
  }

 private:
  Mutex mu_;
  std::vector<Execution> executions_ GUARDED_BY(mu_);
  int64_t next_ GUARDED_BY(mu_) = 0;
  int step_ GUARDED_BY(mu_) = 0;
};

// The token in an output {"t":"TOKEN","in":[...]}.
inline std::string TokenOf(const std::string& json) {
  const std::string key = "\"t\":\"";
  size_t at = json.find(key);
  if (at == std::string::npos) return "";
  at += key.size();
  return json.substr(at, json.find('"', at) - at);
}

// The consumed tokens in an output {"t":"TOKEN","in":["A","B"]}.
inline std::vector<std::string> ConsumedOf(const std::string& json) {
  std::vector<std::string> tokens;
  size_t at = json.find("\"in\":[");
  if (at == std::string::npos) return tokens;
  at += 6;
  while (at < json.size() && json[at] == '"') {
    size_t end = json.find('"', at + 1);
    tokens.push_back(json.substr(at + 1, end - at - 1));
    at = end + 1;
    if (at < json.size() && json[at] == ',') ++at;
  }
  return tokens;
}

// Logs an execution and returns {"t":TOKEN,"in":[deps' tokens]}; fails on its
// first execution when `fails_once`.
class TokenBody : public NodeBody {
 public:
  TokenBody(Ledger* ledger, bool fails_once, int work_us)
      : ledger_(ledger), fails_once_(fails_once), work_us_(work_us) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    // A little work, so that a run spans several of the store's batches.
    std::this_thread::sleep_for(std::chrono::microseconds(work_us_));
    std::vector<std::string> consumed;
    for (const auto& dep : ctx.deps) consumed.push_back(TokenOf(*dep.second));
    if (fails_once_ && !ledger_->FailedBefore(ctx.node)) {
      ledger_->Add(ctx.node, consumed, /*failed=*/true);
      done(NodeResult::Failure(Status::Error(ErrorKind::kPermanent, "planned failure")));
      return;
    }
    std::string out = "{\"t\":\"" + ledger_->Add(ctx.node, consumed, false) + "\",\"in\":[";
    for (size_t i = 0; i < consumed.size(); ++i) out += (i ? ",\"" : "\"") + consumed[i] + "\"";
    done(NodeResult::Success(MakeJson(out + "]}")));
  }

 private:
  Ledger* ledger_;
  const bool fails_once_;
  const int work_us_;
};

// A random DAG of token nodes, and each node's dependencies.
struct Dag {
  WorkflowSpec spec;
  std::map<std::string, std::vector<std::string>> deps;
};

// 3 to 25 nodes, each after up to 3 earlier ones; up to 2 fail once; each
// works for up to 3 ms.
inline Dag MakeDag(std::mt19937& rng, Ledger* ledger) {
  Dag dag;
  dag.spec.name = "prop";
  const int n = 3 + static_cast<int>(rng() % 23);
  int fail_once_left = static_cast<int>(rng() % 3);
  for (int i = 0; i < n; ++i) {
    NodeSpec node;
    node.name = "n" + std::to_string(i);
    std::set<int> picks;
    const int want = i == 0 ? 0 : static_cast<int>(rng() % 4);
    for (int k = 0; k < want; ++k) picks.insert(static_cast<int>(rng() % i));
    for (int p : picks) node.after.push_back("n" + std::to_string(p));
    bool fails_once = fail_once_left > 0 && rng() % 8 == 0;
    if (fails_once) --fail_once_left;
    node.body = std::make_shared<TokenBody>(ledger, fails_once, static_cast<int>(rng() % 3000));
    dag.deps[node.name] = node.after;
    dag.spec.nodes.push_back(std::move(node));
  }
  return dag;
}

}  // namespace keel::testing
