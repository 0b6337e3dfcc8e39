#include "scripts/function_node.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <string>

#include "lua.hpp"
#include "scripts/context_table.h"
#include "scripts/keel_module.h"
#include "scripts/lua_json.h"

namespace keel {
namespace {

// What an Execution runs: the node's own function (or, after `when`, a
// delegate body), or one of an agent's tools with its arguments.
struct LuaCall {
  std::shared_ptr<NodeBody> delegate;
  std::string tool;
  JsonText args;
  // A dynamic node's function instead of `run`: its `when`, then over /
  // params (kValue); or done_when(args, ctx) (kDoneWhen).
  NodeFunctionKind function = NodeFunctionKind::kRun;
};

// How long a node's Lua code runs before it lets other work have its worker.
constexpr double kSliceSeconds = 0.02;

// One attempt of one function node. Owned by shared_ptrs held by whoever
// drives it next (Start, then a pending timer or posted closure), so it lives
// until it has finished; it is driven by one thread at a time.
class Execution : public std::enable_shared_from_this<Execution> {
 public:
  Execution(std::shared_ptr<LuaStatePool> pool, std::unique_ptr<ScriptState> state, int index,
            size_t memory_limit, const NodeContext& ctx, NodeCompletion done, LuaCall call)
      : pool_(std::move(pool)),
        state_(std::move(state)),
        index_(index),
        memory_limit_(memory_limit),
        ctx_(ctx),
        done_(std::move(done)),
        call_(std::move(call)) {}

  void Begin() {
    Guarded([this] {
      active_.node = &ctx_.node;
      active_.cancel = ctx_.cancel;
      active_.deadline = ctx_.deadline;
      active_.clock = pool_->clock();
      state_->SetActive(&active_);
      state_->memory()->ClearExceeded();
      state_->memory()->set_limit(memory_limit_);
      co_ = state_->TakeCoroutine();
      active_.coroutine = co_;
      if ((active_.stop = active_.CheckStop()) != StopReason::kNone) {
        return Finish(Stopped(), true);
      }
      PushContextTable(co_, ctx_);
      active_.context = &ctx_;
      active_.context_table = lua_topointer(co_, 1);
      active_.llm = pool_->llm().get();
      active_.http = pool_->http().get();
      active_.processes = pool_->processes();
      const NodeFunctions& functions = state_->functions(index_);
      if (!call_.tool.empty()) return StartTool(functions);
      if (call_.function == NodeFunctionKind::kDoneWhen) return StartDoneWhen(functions);
      if (functions.when == kNoFunction) return StartRun();
      phase_ = Phase::kWhen;
      lua_rawgeti(co_, LUA_REGISTRYINDEX, functions.when);
      lua_pushvalue(co_, 1);
      Resume(1);
    });
  }

 private:
  enum class Phase { kWhen, kRun };

  // Runs `step`; a C++ exception (only bad_alloc is possible) fails the node
  // instead of escaping into the executor or the timer thread.
  template <typename Step>
  void Guarded(Step step) {
    try {
      step();
    } catch (const std::exception& e) {
      if (done_) Abandon(e.what());
    }
  }

  // Messages do not name the node: whoever reports the result does.
  NodeResult Failed(ErrorKind kind, const std::string& message, double retry_after = -1) const {
    return NodeResult::Failure(Status::Error(kind, message, retry_after));
  }

  NodeResult Stopped() const {
    if (active_.stop == StopReason::kTimeout) return Failed(ErrorKind::kTimeout, "timed out");
    return Failed(ErrorKind::kCancelled, "cancelled");
  }

  void StartRun() {
    phase_ = Phase::kRun;
    if (call_.delegate) return HandOver();
    if (call_.function == NodeFunctionKind::kValue) {
      int ref = state_->functions(index_).value;
      if (ref == kNoFunction) return Finish(NodeResult::Success(MakeJson("null")), true);
      lua_rawgeti(co_, LUA_REGISTRYINDEX, ref);
      lua_pushvalue(co_, 1);
      return Resume(1);
    }
    lua_rawgeti(co_, LUA_REGISTRYINDEX, state_->functions(index_).run);
    lua_pushvalue(co_, 1);
    Resume(1);
  }

  void StartTool(const NodeFunctions& functions) {
    phase_ = Phase::kRun;
    for (const auto& [name, ref] : functions.tools) {
      if (name != call_.tool) continue;
      lua_rawgeti(co_, LUA_REGISTRYINDEX, ref);
      lua_pushvalue(co_, 1);
      if (Status pushed = PushJson(co_, *call_.args); !pushed.ok()) {
        return Finish(Failed(ErrorKind::kError, "arguments: " + pushed.message()), false);
      }
      return Resume(2);
    }
    Finish(Failed(ErrorKind::kError, "unknown tool '" + call_.tool + "'"), true);
  }

  // done_when(output, ctx) of a loop.
  void StartDoneWhen(const NodeFunctions& functions) {
    phase_ = Phase::kRun;
    lua_rawgeti(co_, LUA_REGISTRYINDEX, functions.done_when);
    if (Status pushed = PushJson(co_, call_.args ? *call_.args : "null"); !pushed.ok()) {
      return Finish(Failed(ErrorKind::kError, "output: " + pushed.message()), false);
    }
    lua_pushvalue(co_, 1);
    Resume(2);
  }

  // `when` said yes: the state goes back to the pool and the delegate body
  // (an agent) does the node's work.
  void HandOver() {
    std::shared_ptr<NodeBody> delegate = call_.delegate;
    state_->SetActive(nullptr);
    state_->ReleaseCoroutine(true);
    co_ = nullptr;
    pool_->Return(std::move(state_));
    NodeCompletion done = std::move(done_);
    done_ = nullptr;
    delegate->Start(ctx_, std::move(done));
  }

  // Runs the coroutine until it returns, fails, stops or waits.
  void Resume(int nargs) {
    int nresults = 0;
    int status;
    active_.slice_end = pool_->clock()->Now() + kSliceSeconds;
    {
      CappedScope capped(state_->memory(), true);
      status = lua_resume(co_, nullptr, nargs, &nresults);
    }
    active_.slice_end = 0;  // slices only count while Lua runs
    if (active_.stop == StopReason::kSlice) {
      // Its time slice is used up: queue the rest behind whatever else waits
      // for a worker, so a busy loop cannot starve timers, wake-ups and the
      // joins that would cancel it.
      active_.stop = StopReason::kNone;
      auto next = [self = shared_from_this()] { self->Guarded([&] { self->Resume(0); }); };
      if (ctx_.post) return ctx_.post(std::move(next));
    }
    if (active_.stop != StopReason::kNone) return Finish(Stopped(), false);
    if (status == LUA_YIELD) return OnYield();
    if (status == LUA_OK) return OnReturn();
    OnError(status);
  }

  void OnYield() {
    if (active_.wait) return StartWait();
    double seconds = active_.sleep_seconds;
    if (seconds < 0) {
      return Finish(Failed(ErrorKind::kError,
                           "the function yielded without keel.sleep (coroutine.yield outside a "
                           "coroutine of its own)"),
                    false);
    }
    active_.sleep_seconds = -1;
    Clock* clock = pool_->clock();
    double wake_at = clock->Now() + seconds;
    // A timeout ends the sleep early: the resumed coroutine then stops at once.
    if (active_.deadline > 0 && active_.deadline < wake_at) wake_at = active_.deadline;
    uint64_t sleep = ++sleeps_;
    auto self = shared_from_this();
    // Whichever comes first, the timer or a cancellation, wakes the node; the
    // other finds the sleep already claimed and does nothing.
    if (ctx_.cancel != nullptr) {
      subscription_ = ctx_.cancel->Subscribe([self, sleep] { self->TryWake(sleep); });
    }
    // Nothing may touch this execution after arming: the timer may already be running.
    clock->After(wake_at - clock->Now(), [self, sleep] { self->TryWake(sleep); });
  }

  // keel.llm / keel.http: the operation honours the cancel token and the
  // deadline itself and finishes once; its results resume the coroutine.
  void StartWait() {
    auto start = std::move(active_.wait);
    active_.wait = nullptr;
    uint64_t wait = ++sleeps_;
    auto self = shared_from_this();
    start([self, wait](WaitResult result) {
      self->wait_result_ = std::move(result);
      self->TryWake(wait);
    });
  }

  // On the timer thread or a canceller's thread: no Lua here.
  void TryWake(uint64_t sleep) {
    uint64_t expected = sleep - 1;
    if (!woken_.compare_exchange_strong(expected, sleep)) return;
    auto wake = [self = shared_from_this()] { self->Wake(); };
    if (ctx_.post) {
      ctx_.post(std::move(wake));
    } else {
      wake();
    }
  }

  void Wake() {
    Guarded([this] {
      if (ctx_.cancel != nullptr && subscription_ != 0) ctx_.cancel->Unsubscribe(subscription_);
      subscription_ = 0;
      if ((active_.stop = active_.CheckStop()) != StopReason::kNone) {
        return Finish(Stopped(), false);
      }
      if (wait_result_) {
        WaitResult result = std::move(wait_result_);
        wait_result_ = nullptr;
        return Resume(result(co_));
      }
      Resume(0);
    });
  }

  void OnReturn() {
    bool has_value = lua_gettop(co_) >= 2;  // ctx sits at 1, results above it
    if (phase_ == Phase::kWhen) {
      bool go = has_value && lua_toboolean(co_, 2);
      lua_settop(co_, 1);
      if (!go) return Finish(NodeResult::Skipped(), true);
      return StartRun();
    }
    std::string json;
    if (!has_value) {
      json = "null";
    } else if (Status status = LuaToJson(co_, 2, &json); !status.ok()) {
      return Finish(
          NodeResult::Failure(Status::Error(
              ErrorKind::kError, "output: " + status.message())),
          true);
    }
    Finish(NodeResult::Success(MakeJson(std::move(json))), true);
  }

  void OnError(int status) {
    const char* text = lua_tostring(co_, -1);
    bool out_of_memory = status == LUA_ERRMEM || (state_->memory()->exceeded() && text != nullptr &&
                                                  std::string(text) == "not enough memory");
    if (out_of_memory) {
      return Finish(Failed(ErrorKind::kError,
                           "memory limit of " + FormatMiB(memory_limit_) + " exceeded"),
                    false);
    }
    Status failure = ReadFailure(co_, -1);
    if (!failure.ok()) return Finish(NodeResult::Failure(std::move(failure)), false);
    std::string message =
        text != nullptr ? text
                        : std::string("(error object is a ") + luaL_typename(co_, -1) + " value)";
    lua_State* L = state_->main();
    luaL_traceback(L, co_, message.c_str(), 0);
    message = lua_tostring(L, -1);
    lua_pop(L, 1);
    Finish(Failed(ErrorKind::kError, message), false);
  }

  // Gives the state back (or drops it after a memory overrun) and reports.
  void Finish(NodeResult result, bool coroutine_clean) {
    state_->SetActive(nullptr);
    state_->ReleaseCoroutine(coroutine_clean);
    co_ = nullptr;
    if (state_->memory()->exceeded()) {
      state_.reset();
    } else {
      pool_->Return(std::move(state_));
    }
    NodeCompletion done = std::move(done_);
    done_ = nullptr;
    done(std::move(result));
  }

  // After a C++ exception the state may be half-way through an operation:
  // drop it rather than reuse it.
  void Abandon(const char* what) {
    if (state_ != nullptr) state_->SetActive(nullptr);
    state_.reset();
    NodeCompletion done = std::move(done_);
    done_ = nullptr;
    done(Failed(ErrorKind::kError, std::string("internal error: ") + what));
  }

  const std::shared_ptr<LuaStatePool> pool_;
  std::unique_ptr<ScriptState> state_;
  const int index_;
  const size_t memory_limit_;  // the cap while this execution holds the state
  const NodeContext& ctx_;  // the executor keeps it alive until done_ is called
  NodeCompletion done_;
  ActiveNode active_;
  lua_State* co_ = nullptr;
  Phase phase_ = Phase::kRun;
  uint64_t sleeps_ = 0;              // keel.sleep calls so far; driving thread only
  std::atomic<uint64_t> woken_{0};   // the last sleep whose wake-up was claimed
  uint64_t subscription_ = 0;        // on ctx_.cancel while asleep; driving thread only
  const LuaCall call_;
  // Set by the waiting operation before it claims the wake-up (TryWake's
  // exchange publishes it); read by the woken driving thread.
  WaitResult wait_result_;
};

// Checks a state out and starts an Execution of `call` on it.
void StartExecution(const std::shared_ptr<LuaStatePool>& pool, int index, size_t memory,
                    const NodeContext& ctx, NodeCompletion done, LuaCall call) {
  std::shared_ptr<Execution> execution;
  try {
    auto state = pool->Checkout();
    if (!state.ok()) {
      done(NodeResult::Failure(state.status()));
      return;
    }
    execution = std::make_shared<Execution>(pool, std::move(state).value(), index,
                                            memory ? memory : pool->memory_limit(), ctx,
                                            std::move(done), std::move(call));
  } catch (const std::exception& e) {
    if (done) done(NodeResult::Failure(Status::Error(ErrorKind::kError, e.what())));
    return;
  }
  execution->Begin();
}

}  // namespace

void StartNodeFunction(const std::shared_ptr<LuaStatePool>& pool, int index,
                       NodeFunctionKind function, const NodeContext& ctx, JsonText arg,
                       NodeCompletion done) {
  StartExecution(pool, index, 0, ctx, std::move(done),
                 LuaCall{nullptr, "", std::move(arg), function});
}

void FunctionNode::Start(const NodeContext& ctx, NodeCompletion done) {
  StartExecution(pool_, index_, memory_, ctx, std::move(done), LuaCall{delegate_, "", nullptr});
}

void LuaToolRunner::Run(const NodeContext& ctx, const std::string& name, JsonText arguments,
                        NodeCompletion done) {
  StartExecution(pool_, index_, memory_, ctx, std::move(done),
                 LuaCall{nullptr, name, std::move(arguments)});
}

}  // namespace keel
