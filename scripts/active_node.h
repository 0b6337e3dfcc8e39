#pragma once
// ActiveNode: what the `keel` module and the instruction hook know about the
// node execution running on a Lua state.
//
// A ScriptState (script_state.h) keeps a StateAnchor in the extra space of
// its main thread; Lua copies that space into every thread created later, so
// any coroutine of the state finds the anchor and, through it, the execution
// currently holding the state. An ActiveNode is read and written only by the
// thread that holds its state.

#include <functional>
#include <string>

#include "engine/cancel_token.h"
#include "engine/clock.h"
#include "engine/workflow.h"

struct lua_State;

namespace keel {

class HttpLoop;
class LlmClient;
class ProcessLoop;

// What a waiting keel call (keel.llm, keel.http) hands back to its
// coroutine: pushes the values the coroutine resumes with and returns how
// many. Runs on the thread that resumes the coroutine.
using WaitResult = std::function<int(lua_State* co)>;
// Starts a waiting operation; it calls `finish` exactly once, from any thread.
using WaitStart = std::function<void(std::function<void(WaitResult)> finish)>;

// Why the hook stopped a coroutine: its attempt was cancelled, or its
// deadline (the node's timeout) passed.
// kSlice only pauses: the coroutine ran for its time slice and is requeued.
enum class StopReason { kNone, kCancelled, kTimeout, kSlice };

struct ActiveNode {
  const NodeContext* context = nullptr;  // what the attempt received
  const void* context_table = nullptr;   // lua_topointer of its ctx table
  const std::string* node = nullptr;     // its name, for keel.log and messages
  lua_State* coroutine = nullptr;        // the coroutine running the node's function
  const CancelToken* cancel = nullptr;   // may be null
  double deadline = 0;                   // Clock::Now() time the attempt times out; 0: none
  double slice_end = 0;                  // Clock::Now() time the current slice ends; 0: none
  Clock* clock = nullptr;                // reads the time for `deadline`
  double sleep_seconds = -1;             // set by keel.sleep just before it yields
  WaitStart wait;                        // set by keel.llm / keel.http just before they yield
  int llm_calls = 0;                     // keel.llm calls of this execution so far
  LlmClient* llm = nullptr;              // the script's providers
  HttpLoop* http = nullptr;              // the I/O loop keel.http uses
  ProcessLoop* processes = nullptr;      // what keel.exec runs programs on
  StopReason stop = StopReason::kNone;   // set by the hook just before it stops the coroutine

  StopReason CheckStop() const {
    if (cancel != nullptr && cancel->cancelled()) return StopReason::kCancelled;
    if (deadline <= 0 && slice_end <= 0) return StopReason::kNone;
    double now = clock->Now();
    if (deadline > 0 && now >= deadline) return StopReason::kTimeout;
    if (slice_end > 0 && now >= slice_end) return StopReason::kSlice;
    return StopReason::kNone;
  }
};

struct StateAnchor {
  ActiveNode* active = nullptr;  // null while no execution holds the state
};

// Stores `anchor` in L's extra space. Call on the main thread before any
// coroutine is created.
void SetStateAnchor(lua_State* L, StateAnchor* anchor);
// The execution running on the state of L (any of its threads), or null.
ActiveNode* ActiveNodeOf(lua_State* L);

// Installs on coroutine `co` the instruction-count hook that stops it (every
// kStopCheckInstructions instructions) once ActiveNode::CheckStop gives a
// reason: it records the reason in ActiveNode::stop and yields the coroutine
// (which the script cannot catch) or, where yielding is impossible, raises an
// error. Coroutines the script creates inside `co` inherit the hook.
inline constexpr int kStopCheckInstructions = 1000;
void InstallStopHook(lua_State* co);

}  // namespace keel
