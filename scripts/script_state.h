#pragma once
// ScriptState: one lua_State in which the workflow script has run once.
//
// Running the script declares every workflow again, so each state holds its
// own copies of every node's run and when functions; nodes never share a
// lua_State while they run. Top-level script code therefore runs once per
// state, and globals a node writes may be seen by later executions on the
// same state: scripts must not rely on either. Functions are found by their
// index in declaration order (workflow by workflow, node by node) in O(1).
//
// Thread-safety: a ScriptState is used by one thread at a time; LuaStatePool
// hands it from thread to thread.

#include <memory>
#include <string>
#include <vector>

#include "engine/status.h"
#include "scripts/active_node.h"
#include "scripts/declarations.h"
#include "scripts/lua_alloc.h"

struct lua_State;

namespace keel {

struct ScriptSource {
  std::string chunk_name;  // the script path as the user gave it, for messages
  std::string text;        // the script bytes
  std::string directory;   // absolute directory of the script, for `require`; may be empty
};

class ScriptState {
 public:
  // Creates a state whose allocations are capped at `memory_limit` bytes,
  // opens the standard libraries (as script_sandbox.h restricts them) and
  // `keel`, runs the script (under the cap) and fills *declarations with what
  // it declared. Like the lua interpreter, skips a UTF-8 byte order mark and
  // a first line starting with '#' (line numbers stay right). On failure
  // returns kPermanent with a message that names the file (and the line when
  // known), or the memory limit that was hit.
  //
  // `replay` (states after the first, declaration_replay.h): not null makes
  // the state a replaying one, which loads *replay (the chunk DumpChunk made
  // of the same text) instead of compiling the text unless it is empty.
  // `dump` (the first state): not null receives that dump of the chunk.
  static Result<std::unique_ptr<ScriptState>> Create(const ScriptSource& source,
                                                     size_t memory_limit,
                                                     ScriptDeclarations* declarations,
                                                     const std::string* replay = nullptr,
                                                     std::string* dump = nullptr);
  ~ScriptState();
  ScriptState(const ScriptState&) = delete;
  ScriptState& operator=(const ScriptState&) = delete;

  lua_State* main() const { return L_; }
  LuaMemory* memory() { return &memory_; }
  // Registry references of the functions of node `index`.
  const NodeFunctions& functions(int index) const { return functions_[index]; }

  // Tells the keel module and the stop hook which execution holds the state;
  // null when none does.
  void SetActive(ActiveNode* active) { anchor_.active = active; }

  // A coroutine with an empty stack and the stop hook installed. Only one is
  // out at a time. Never fails (the memory cap is disarmed outside Lua code).
  lua_State* TakeCoroutine();
  // Gives back the coroutine from TakeCoroutine. One that finished cleanly
  // is kept for the next execution; any other (failed, or left suspended) is
  // dropped for the garbage collector.
  void ReleaseCoroutine(bool clean);

 private:
  explicit ScriptState(size_t memory_limit) : memory_(memory_limit) {}

  LuaMemory memory_;  // declared before L_, which allocates through it
  StateAnchor anchor_;
  lua_State* L_ = nullptr;
  std::vector<NodeFunctions> functions_;
  lua_State* coroutine_ = nullptr;   // anchored in the registry by coroutine_ref_
  int coroutine_ref_ = kNoFunction;  // LUA_NOREF
  bool coroutine_ready_ = false;     // coroutine_ may be handed out again
};

}  // namespace keel
