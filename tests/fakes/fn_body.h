#pragma once
// FnBody: a node body that runs a C++ function synchronously on the thread
// that starts it, counting its calls, for executor tests. Any thread; the
// function must be safe to call from the executor's workers.

#include <atomic>
#include <functional>
#include <utility>

#include "engine/workflow.h"

namespace keel::testing {

using BodyFn = std::function<NodeResult(const NodeContext&)>;

class FnBody : public NodeBody {
 public:
  explicit FnBody(BodyFn fn) : fn_(std::move(fn)) {}
  void Start(const NodeContext& ctx, NodeCompletion done) override {
    calls.fetch_add(1);
    done(fn_(ctx));
  }
  std::atomic<int> calls{0};

 private:
  BodyFn fn_;
};

}  // namespace keel::testing
