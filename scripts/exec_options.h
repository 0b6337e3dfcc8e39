#pragma once
// The fields keel.exec takes — command, env, cwd, stdin, output, exit_codes,
// kill_grace, and timeout for a call from inside a node — checked where they
// are written, and read into a ProcessRequest when the program runs. Used
// by scripts/exec_calls.cc. Functions here follow the trampoline rules of
// lua_trampoline.h: they never raise. Thread-safety: as for the lua_State.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "engine/workflow.h"
#include "nodes/child_process.h"
#include "nodes/exec_result.h"

struct lua_State;

namespace keel {

// Where keel.exec's fields are written: a node declaration
// (keel.exec "name" { ... } or keel.exec { ... } while the script loads),
// where stdin is a function of ctx and arguments may hold templates, or a
// call from inside a running node, where stdin is a value and `timeout` is
// a field.
enum class ExecForm { kNode, kCall };

// The exec fields of `form`, in the order messages list them.
std::vector<std::string_view> ExecFieldNames(ExecForm form);
// True when `name` is an exec field of `form`.
bool IsExecField(ExecForm form, std::string_view name);

// Empty when the value at `index` is valid for exec field `name` of
// `form`; otherwise the problem, naming the field ("option 'command' must
// be a non-empty list of strings ..."). `after` (kNode only) is what
// {{deps.NAME}} templates may name.
std::string CheckExecField(lua_State* L, int index, std::string_view name, ExecForm form,
                           const std::vector<std::string>& after);

// What one run of a program needs beyond the ProcessRequest.
struct ExecCall {
  ProcessRequest request;
  bool has_output = false;  // `output` was given
  ExecOutput output = ExecOutput::kText;
  std::map<int, ErrorKind> exit_codes;
  std::string what;  // the command, for messages
};

// Reads the checked fields of the table at `table` into *call: templates
// rendered with ctx's params and deps when `form` is kNode, the deadline
// the earlier of ctx.deadline and `timeout`, the token ctx's, KEEL_RUN_ID,
// KEEL_NODE, KEEL_ATTEMPT and KEEL_IDEMPOTENCY_KEY added to the
// environment. Does not read stdin. `now` is the Clock::Now() time. Fails
// kPermanent (a template naming a missing field).
Status ReadExecCall(lua_State* L, int table, ExecForm form, const NodeContext& ctx, double now,
                    ExecCall* call);

}  // namespace keel
