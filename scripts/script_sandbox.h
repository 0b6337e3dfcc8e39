#pragma once
// What keel changes in the standard libraries of a script's Lua state, so
// that a script (by mistake or on purpose) cannot end, crash or hijack the
// keel process:
//
// - os.exit raises an error instead of ending the process; os.setlocale may
//   only read the locale (it is process-wide: changing it would change how
//   every thread formats numbers).
// - load, loadfile, dofile and require load Lua source text only: a binary
//   (precompiled) chunk is refused, because Lua does not verify bytecode and
//   a corrupt one crashes the process.
// - debug keeps only functions that inspect (traceback, getinfo, getlocal,
//   getupvalue, upvalueid, getmetatable, getuservalue). sethook would remove
//   the hook that enforces timeouts and cancellation; the others reach into
//   keel's registry or change other functions' variables; debug.debug reads
//   stdin.
// - print, io.write and io.stdout go to stderr: stdout belongs to keel's own
//   output (--json, graph).
// - package.path starts with the script's own directory, so `require` finds
//   modules next to the script whatever the current directory. The Lua
//   files `require` loads are noted (RequiredModules), so a run records them.
//
// Thread-safety: as for the lua_State it is installed in.

#include <string>
#include <utility>
#include <vector>

struct lua_State;

namespace keel {

// Applies the changes above to L, whose standard libraries must be open.
// `script_dir` is the absolute directory of the script ("" adds nothing to
// package.path). Call once, with the memory cap disarmed, before the script
// runs. Never fails.
void InstallScriptSandbox(lua_State* L, const std::string& script_dir);

// The Lua modules `require` loaded from files in L so far, in load order:
// (name as required, file name as found on package.path). Call with no
// coroutine of L running; never fails.
std::vector<std::pair<std::string, std::string>> RequiredModules(lua_State* L);

}  // namespace keel
