#pragma once
// keel.exec: runs a program (an argv list, no shell) as a node of its own or
// from inside a running node, without holding a worker while it runs.
//
//   keel.exec "train" { command = {...}, ... }  a node declaration, checked at
//                                               the declaring line
//   keel.exec { command = {...}, ... }          while the script loads: the
//                                               same declaration, unnamed
//                                               (for keel.map's `node`)
//   keel.exec { command = {...}, ... }          inside a running node: runs
//                                               the program, yielding the
//                                               node's coroutine
//
// A declared exec node is a function node whose `run` keel writes: it calls
// the node's `stdin` function (if any), renders the {{...}} templates of the
// command, env and cwd, and yields while the script's ProcessLoop runs the
// program; stdout becomes the output. So `when`, the instruction hook,
// timeouts, cancellation and retries work as for keel.fn. Failures are
// keel.fail errors of the kind the exit status maps to (exec_result.h).
//
// Thread-safety: as for the lua_State.

struct lua_State;

namespace keel {

// Sets `exec` on the module table at the top of L's stack.
void AddExec(lua_State* L);

}  // namespace keel
