#pragma once
// keel.llm and keel.http: calls from inside a node's Lua function that wait
// for the network without holding a worker.
//
// Each checks its arguments at once (raising a clear error), records the
// operation in the state's ActiveNode and yields the node's coroutine; the
// function node starts the operation (on the LlmClient or HttpLoop of the
// script) and resumes the coroutine with its result on a worker. A failed
// call raises a keel.fail error of the right kind (transient, rate_limited,
// timeout, ...), so the node's retry and fallback policies apply. keel.llm
// reports the call's tokens and cost like an agent node's calls do.
//
// Thread-safety: as for the lua_State.

struct lua_State;

namespace keel {

// Sets `llm` and `http` on the module table at the top of L's stack.
void AddWaitingCalls(lua_State* L);

}  // namespace keel
