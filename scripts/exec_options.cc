#include "scripts/exec_options.h"

#include <algorithm>
#include <cmath>

#include "engine/did_you_mean.h"
#include "lua.hpp"
#include "nodes/prompt_template.h"
#include "scripts/option_values.h"

namespace keel {
namespace {

using namespace option_values;

constexpr std::string_view kNodeFields[] = {"command", "env",        "cwd",       "stdin",
                                            "output",  "exit_codes", "kill_grace"};
constexpr std::string_view kCallFields[] = {"command", "env",        "cwd",        "stdin",
                                            "output",  "exit_codes", "kill_grace", "timeout"};
// The kinds an exit code may map to.
constexpr std::string_view kExitKinds[] = {"transient", "permanent", "rate_limited", "timeout",
                                           "error"};

// Pushes t[field] without metamethods.
void RawGet(lua_State* L, int t, const char* field) {
  lua_pushstring(L, field);
  lua_rawget(L, t);
}

std::string Got(lua_State* L, int index) { return ", got " + Describe(L, index); }

// Problems of the templates in string `text` (at `index`): syntax, and
// {{deps.NAME}} naming no dependency in `after`.
std::string TemplateProblem(lua_State* L, int index, const std::vector<std::string>& after) {
  auto parsed = PromptTemplate::Parse(lua_tostring(L, index));
  if (!parsed.ok()) return parsed.status().message();
  for (const PromptTemplate::Field& field : parsed->fields()) {
    if (field.path[0] != "deps") continue;
    if (std::find(after.begin(), after.end(), field.path[1]) != after.end()) continue;
    return "{{" + field.text + "}} names no dependency in `after`" +
           DidYouMean(field.path[1], after);
  }
  return "";
}

std::string CheckCommand(lua_State* L, int index, ExecForm form,
                         const std::vector<std::string>& after) {
  const std::string name = "option 'command'";
  if (IsString(L, index)) {
    return name +
           " must be a list such as { \"python3\", \"train.py\" }, not a string: there "
           "is no shell";
  }
  if (!IsListOf(L, index, [L](int i) { return IsString(L, i); }) || lua_rawlen(L, index) == 0) {
    return name + " must be a non-empty list of strings (the program, then its arguments)" +
           Got(L, index);
  }
  lua_rawgeti(L, index, 1);
  bool empty_program = lua_rawlen(L, -1) == 0;
  lua_pop(L, 1);
  if (empty_program) return name + ": the program (item 1) is an empty string";
  if (form != ExecForm::kNode) return "";
  for (lua_Integer i = 1; i <= static_cast<lua_Integer>(lua_rawlen(L, index)); ++i) {
    lua_rawgeti(L, index, i);
    std::string problem = TemplateProblem(L, lua_gettop(L), after);
    lua_pop(L, 1);
    if (!problem.empty()) return name + ": item " + std::to_string(i) + ": " + problem;
  }
  return "";
}

std::string CheckEnv(lua_State* L, int index, ExecForm form,
                     const std::vector<std::string>& after) {
  const std::string name = "option 'env'";
  if (!IsTable(L, index)) return name + " must be a table of NAME = \"value\"" + Got(L, index);
  std::string problem;
  lua_pushnil(L);
  while (problem.empty() && lua_next(L, index) != 0) {
    int key = lua_gettop(L) - 1;
    if (!IsEnvName(L, key)) {
      problem = name + ": keys must name environment variables (letters, digits and '_')";
    } else if (!IsString(L, key + 1) ||
               std::string_view(lua_tostring(L, key + 1)).find('\0') != std::string_view::npos) {
      problem = name + ": " + lua_tostring(L, key) + " must be a string" + Got(L, key + 1);
    } else if (form == ExecForm::kNode) {
      std::string inside = TemplateProblem(L, key + 1, after);
      if (!inside.empty()) problem = name + ": " + lua_tostring(L, key) + ": " + inside;
    }
    lua_pop(L, 1);
  }
  if (!problem.empty()) lua_pop(L, 1);  // the key lua_next left
  return problem;
}

std::string CheckExitCodes(lua_State* L, int index) {
  const std::string name = "option 'exit_codes'";
  const std::string shape = " must be a table such as { [2] = \"permanent\" }";
  if (!IsTable(L, index)) return name + shape + Got(L, index);
  std::string problem;
  lua_pushnil(L);
  while (problem.empty() && lua_next(L, index) != 0) {
    int key = lua_gettop(L) - 1;
    if (!IsIntegerAtLeast(L, key, 1) || lua_tointeger(L, key) > 255) {
      problem = name + ": keys must be exit codes from 1 to 255" + Got(L, key);
    } else if (!IsString(L, key + 1)) {
      problem = name + ": [" + std::to_string(lua_tointeger(L, key)) + "] must be a kind" +
                Got(L, key + 1);
    } else {
      std::string_view kind = lua_tostring(L, key + 1);
      if (std::find(std::begin(kExitKinds), std::end(kExitKinds), kind) == std::end(kExitKinds)) {
        problem = name + ": [" + std::to_string(lua_tointeger(L, key)) + "]: unknown kind '" +
                  std::string(kind) + "'" + DidYouMean(kind, kExitKinds) +
                  " (kinds: transient, permanent, rate_limited, timeout, error)";
      }
    }
    lua_pop(L, 1);
  }
  if (!problem.empty()) lua_pop(L, 1);
  return problem;
}

// Pushes the rendered `text` or returns the failure.
Status Render(const std::string& text, const NodeContext& ctx, std::string* out) {
  auto parsed = PromptTemplate::Parse(text);
  if (!parsed.ok()) return parsed.status();
  if (parsed->fields().empty()) {
    *out = text;
    return Status::Ok();
  }
  auto rendered = parsed->Render(ctx.params, ctx.deps, ctx.item, ctx.index);
  if (!rendered.ok()) return rendered.status();
  *out = std::move(rendered).value();
  return Status::Ok();
}

}  // namespace

std::vector<std::string_view> ExecFieldNames(ExecForm form) {
  if (form == ExecForm::kNode) return {std::begin(kNodeFields), std::end(kNodeFields)};
  return {std::begin(kCallFields), std::end(kCallFields)};
}

bool IsExecField(ExecForm form, std::string_view name) {
  auto names = ExecFieldNames(form);
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::string CheckExecField(lua_State* L, int index, std::string_view field, ExecForm form,
                           const std::vector<std::string>& after) {
  index = lua_absindex(L, index);
  const std::string name = "option '" + std::string(field) + "'";
  if (field == "command") return CheckCommand(L, index, form, after);
  if (field == "env") return CheckEnv(L, index, form, after);
  if (field == "exit_codes") return CheckExitCodes(L, index);
  if (field == "cwd") {
    if (!IsString(L, index) || lua_rawlen(L, index) == 0) {
      return name + " must be a non-empty string (a directory)" + Got(L, index);
    }
    if (form != ExecForm::kNode) return "";
    std::string problem = TemplateProblem(L, index, after);
    return problem.empty() ? "" : name + ": " + problem;
  }
  if (field == "stdin") {
    if (form == ExecForm::kCall || IsFunction(L, index)) return "";
    return name + " must be a function of ctx whose result is written to stdin as JSON" +
           Got(L, index);
  }
  if (field == "output") {
    if (IsOneOf(L, index, {"text", "json", "lines"})) return "";
    return name + " must be \"text\", \"json\" or \"lines\"" +
           (IsString(L, index) ? ", got '" + std::string(lua_tostring(L, index)) + "'"
                               : Got(L, index));
  }
  if (field == "kill_grace") {
    if (IsSecondsOrZero(L, index)) return "";
    return name + " must be a number of seconds from 0 to 1e9" + Got(L, index);
  }
  if (field == "timeout") {
    if (IsSeconds(L, index)) return "";
    return name + " must be a number of seconds above 0 and at most 1e9" + Got(L, index);
  }
  return "unknown " + name;
}

Status ReadExecCall(lua_State* L, int table, ExecForm form, const NodeContext& ctx, double now,
                    ExecCall* call) {
  table = lua_absindex(L, table);
  ProcessRequest& request = call->request;
  auto text = [&](int index, const std::string& what, std::string* out) {
    std::string raw = lua_tostring(L, index);
    if (form != ExecForm::kNode) {
      *out = std::move(raw);
      return Status::Ok();
    }
    Status rendered = Render(raw, ctx, out);
    if (rendered.ok()) return rendered;
    return Status::Error(ErrorKind::kPermanent, what + ": " + rendered.message());
  };
  RawGet(L, table, "command");
  if (lua_istable(L, -1)) {
    for (lua_Integer i = 1; i <= static_cast<lua_Integer>(lua_rawlen(L, -1)); ++i) {
      lua_rawgeti(L, -1, i);
      std::string arg;
      Status s = lua_type(L, -1) == LUA_TSTRING
                     ? text(lua_gettop(L), "command item " + std::to_string(i), &arg)
                     : Status::Ok();
      lua_pop(L, 1);
      if (!s.ok()) {
        lua_pop(L, 1);
        return s;
      }
      request.argv.push_back(std::move(arg));
    }
  }
  lua_pop(L, 1);
  call->what = DescribeCommand(request.argv);
  RawGet(L, table, "env");
  if (lua_istable(L, -1)) {
    int env = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, env) != 0) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
        std::string key = lua_tostring(L, -2);
        std::string value;
        Status s = text(lua_gettop(L), "env " + key, &value);
        if (!s.ok()) {
          lua_settop(L, env - 1);
          return s;
        }
        request.env.emplace_back(std::move(key), std::move(value));
      }
      lua_pop(L, 1);
    }
    std::sort(request.env.begin(), request.env.end());
  }
  lua_pop(L, 1);
  request.env.emplace_back("KEEL_RUN_ID", ctx.run_id);
  request.env.emplace_back("KEEL_NODE", ctx.scope + ctx.node);
  request.env.emplace_back("KEEL_ATTEMPT", std::to_string(ctx.attempt));
  request.env.emplace_back("KEEL_IDEMPOTENCY_KEY", ctx.IdempotencyKey());
  RawGet(L, table, "cwd");
  if (lua_type(L, -1) == LUA_TSTRING) {
    Status s = text(lua_gettop(L), "cwd", &request.cwd);
    if (!s.ok()) {
      lua_pop(L, 1);
      return s;
    }
  }
  lua_pop(L, 1);
  RawGet(L, table, "output");
  if (lua_type(L, -1) == LUA_TSTRING) {
    call->has_output = ParseExecOutput(lua_tostring(L, -1), &call->output);
  }
  lua_pop(L, 1);
  RawGet(L, table, "exit_codes");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      ErrorKind kind;
      if (lua_isinteger(L, -2) && lua_type(L, -1) == LUA_TSTRING &&
          ParseErrorKind(lua_tostring(L, -1), &kind)) {
        call->exit_codes[static_cast<int>(lua_tointeger(L, -2))] = kind;
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  RawGet(L, table, "kill_grace");
  if (lua_type(L, -1) == LUA_TNUMBER) request.kill_grace = lua_tonumber(L, -1);
  lua_pop(L, 1);
  request.deadline = ctx.deadline;
  RawGet(L, table, "timeout");
  if (form == ExecForm::kCall && lua_type(L, -1) == LUA_TNUMBER) {
    double until = now + lua_tonumber(L, -1);
    if (request.deadline <= 0 || until < request.deadline) request.deadline = until;
  }
  lua_pop(L, 1);
  request.cancel = ctx.cancel;
  return Status::Ok();
}

}  // namespace keel
