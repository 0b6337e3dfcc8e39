#pragma once
// The `keel` Lua module, installed in package.preload so scripts say
// `local keel = require "keel"`.
//
// It holds the DSL (keel.fn, keel.workflow; see declarations.h) and the
// helpers a node's functions use: keel.null, keel.array, keel.object,
// keel.json.encode/decode, keel.log, keel.sleep, keel.fail, and keel.llm and
// keel.http (llm_calls.h).
//
// keel.sleep yields the node's coroutine after recording the wait in the
// state's ActiveNode; the function node (function_node.h) arms the timer and
// resumes the coroutine. keel.fail raises a table error value carrying an
// engine error kind, read back with ReadFailure.
//
// Thread-safety: as for the lua_State it is installed in.

#include <string>

#include "engine/status.h"

struct lua_State;

namespace keel {

struct StateAnchor;

// Installs the module in L, whose standard libraries must be open, and points
// L's extra space at `anchor` (which may be null, and must outlive L). Call
// once, with the memory cap disarmed, before the script runs.
void InstallKeelModule(lua_State* L, StateAnchor* anchor);

// When the value at `index` is an error raised by keel.fail, returns the
// Status it describes, its message prefixed with "node 'NAME': " unless `node`
// is empty; otherwise an ok Status.
Status ReadFailure(lua_State* L, int index);

// Pushes an error value like keel.fail's for `status` (not ok), so that
// ReadFailure gives `status` back.
void PushFailure(lua_State* L, const Status& status);

}  // namespace keel
