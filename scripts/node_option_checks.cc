// Checking the value of a DSL option (CheckOption, CheckBudget of
// node_options.h): each type's expectation, the fields of table-valued
// options, tools, headers and messages; every message names the option.

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/did_you_mean.h"
#include "lua.hpp"
#include "nodes/provider_config.h"
#include "scripts/declarations.h"
#include "scripts/node_options.h"
#include "scripts/option_values.h"

namespace keel {
namespace {

using namespace option_values;
using enum OptionType;

constexpr const char* kKeysFromEnvironment =
    "keys are read from the environment: use api_key_env = \"NAME\"";

std::string Got(lua_State* L, int index) { return ", got " + Describe(L, index); }

// One field of a table-valued option: hedge, prices, budget, a tool, a message.
struct Field {
  std::string_view name;
  bool (*valid)(lua_State* L, int index);
  std::string_view what;  // what it must be, e.g. "a positive number of seconds"
  bool required;
};

constexpr Field kHedgeFields[] = {
    {"delay", &IsSeconds, "a number of seconds above 0 and at most 1e9", true},
    {"max", &IsHedgeMax, "a whole number from 2 to 2147483647", false},
};
constexpr Field kPriceFields[] = {
    {"input", &IsPrice, "a price per million tokens from 0 to 1e6", false},
    {"output", &IsPrice, "a price per million tokens from 0 to 1e6", false},
};
constexpr Field kHealthFields[] = {
    {"interval", &IsSeconds, "a number of seconds above 0 and at most 1e9", true},
};
constexpr Field kBudgetFields[] = {
    {"tokens", &IsPositiveInteger, "a whole number, 1 or more", false},
    {"cost", &IsPositiveNumber, "a finite number above 0", false},
};
constexpr Field kToolFields[] = {
    {"description", &IsString, "a string", false},
    {"parameters", &IsJsonObject, "a JSON schema object (a table of name = value)", false},
    {"run", &IsFunction, "a function", true},
};
constexpr Field kMessageFields[] = {
    {"role", &IsRole, "\"system\", \"user\" or \"assistant\"", true},
    {"content", &IsString, "a string", true},
};

// Empty when the table at `index` holds only `fields`, each valid, and every
// required one; otherwise the first problem, such as "unknown field 'dealy'
// (did you mean 'delay'?)".
std::string CheckFields(lua_State* L, int index, std::span<const Field> fields) {
  index = lua_absindex(L, index);
  std::vector<std::string_view> names;
  for (const Field& field : fields) names.push_back(field.name);
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    lua_pop(L, 1);
    std::string key = IsString(L, -1) ? lua_tostring(L, -1) : "";
    if (std::find(names.begin(), names.end(), key) == names.end()) {
      std::string problem = IsString(L, -1)
                                ? "unknown field '" + key + "'" + DidYouMean(key, names)
                                : std::string("unexpected ") + luaL_typename(L, -1) + " key";
      lua_pop(L, 1);
      return problem;
    }
  }
  for (const Field& field : fields) {
    lua_pushlstring(L, field.name.data(), field.name.size());
    lua_rawget(L, index);
    std::string name = "field '" + std::string(field.name) + "' ";
    std::string problem;
    if (lua_isnil(L, -1)) {
      if (field.required) problem = name + "is required (" + std::string(field.what) + ")";
    } else if (!field.valid(L, lua_gettop(L))) {
      // A table that is no usable schema: say what is wrong inside it.
      std::string inside =
          field.valid == &IsJsonObject && IsTable(L, -1) ? JsonObjectProblem(L, lua_gettop(L)) : "";
      problem = inside.empty() ? name + "must be " + std::string(field.what) + Got(L, -1)
                               : "field '" + std::string(field.name) + "': " + inside;
    }
    lua_pop(L, 1);
    if (!problem.empty()) return problem;
  }
  return "";
}

// CheckOption for an option whose value is a table of `fields`; `shape`
// describes it for a value that is not a table.
std::string CheckRecord(lua_State* L, int index, const std::string& option,
                        std::span<const Field> fields, std::string_view shape) {
  if (!IsTable(L, index)) return option + " must be " + std::string(shape) + Got(L, index);
  std::string problem = CheckFields(L, index, fields);
  return problem.empty() ? "" : option + ": " + problem;
}

std::string CheckMessages(lua_State* L, int index, const std::string& option) {
  if (!IsListOf(L, index, [L](int i) { return IsTable(L, i); }) || lua_rawlen(L, index) == 0) {
    return option + " must be a non-empty list of { role = ..., content = ... }" + Got(L, index);
  }
  for (lua_Integer i = 1; i <= static_cast<lua_Integer>(lua_rawlen(L, index)); ++i) {
    lua_rawgeti(L, index, i);
    std::string problem = CheckFields(L, -1, kMessageFields);
    lua_pop(L, 1);
    if (!problem.empty()) return option + ": item " + std::to_string(i) + ": " + problem;
  }
  return "";
}

// The problem with one entry (key at -2, value at -1) of the tools table.
std::string CheckTool(lua_State* L) {
  if (!IsString(L, -2)) {
    return std::string("tools are NAME = { ... } pairs; found a ") + luaL_typename(L, -2) + " key";
  }
  std::string tool = "tool '" + std::string(lua_tostring(L, -2)) + "'";
  if (!IsToolName(L, -2)) {
    return "invalid " + tool + ": use 1 to 64 letters, digits, '_' and '-'";
  }
  if (!IsTable(L, -1)) {
    return tool + " must be a table { description, parameters, run }" + Got(L, -1);
  }
  std::string problem = CheckFields(L, -1, kToolFields);
  return problem.empty() ? "" : tool + ": " + problem;
}

// The problem with one entry (key at -2, value at -1) of the headers table.
std::string CheckHeader(lua_State* L) {
  if (!IsHeaderName(L, -2)) return "header names must be HTTP tokens (letters, digits, '-', ...)";
  std::string name = lua_tostring(L, -2);
  std::string lower = name;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(tolower(c)); });
  if (lower == "authorization" || lower == "x-api-key") {
    return "header '" + name + "' is refused: " + kKeysFromEnvironment;
  }
  if (!IsHeaderValue(L, -1)) {
    return "header '" + name + "' must be a string without line breaks" + Got(L, -1);
  }
  return "";
}

// CheckOption for a table whose entries `entry` checks.
std::string CheckEntries(lua_State* L, int index, const std::string& option, std::string_view shape,
                         std::string (*entry)(lua_State*)) {
  if (!IsTable(L, index)) return option + " must be " + std::string(shape) + Got(L, index);
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    std::string problem = entry(L);
    lua_pop(L, 1);
    if (!problem.empty()) {
      lua_pop(L, 1);
      return option + ": " + problem;
    }
  }
  return "";
}

std::string CheckOutput(lua_State* L, int index, const std::string& option) {
  if (IsOneOf(L, index, {"text", "json"})) return "";
  if (!IsTable(L, index)) {
    return option + " must be \"text\", \"json\" or a JSON schema (a table)" + Got(L, index);
  }
  std::string problem = JsonObjectProblem(L, index);
  return problem.empty() ? "" : option + ": " + problem;
}

// For options checked by their value alone: empty when the value at `index`
// is valid, otherwise what it must be.
std::string Expectation(lua_State* L, int index, OptionType type) {
  auto is_string = [L](int i) { return IsString(L, i); };
  switch (type) {
    case kNames:
      if (is_string(index) || IsListOf(L, index, is_string)) return "";
      return "must be a node name or a list of node names";
    case kFunction:
      return IsFunction(L, index) ? "" : "must be a function";
    case kBoolean:
      return lua_type(L, index) == LUA_TBOOLEAN ? "" : "must be true or false";
    case kSeconds:
      return IsSeconds(L, index) ? "" : "must be a number of seconds above 0 and at most 1e9";
    case kSize:
      if (IsPositiveNumber(L, index) || is_string(index)) return "";
      return "must be a finite number of MiB above 0, or a size such as \"64MB\"";
    case kTableOrCount:
      if (IsTable(L, index) || IsCount(L, index)) return "";
      return "must be a table or a whole number from 1 to 2147483647";
    case kCircuit:
      if (IsTable(L, index) || lua_type(L, index) == LUA_TBOOLEAN) return "";
      if (is_string(index) && lua_rawlen(L, index) > 0) return "";
      return "must be a table, true, or a breaker key";
    case kFallback:
      if (IsWorkflowRef(L, index) || IsFallbackRule(L, index)) return "";
      if (IsListOf(L, index,
                   [L](int i) { return IsWorkflowRef(L, i) || IsFallbackRule(L, i); })) {
        return "";
      }
      return "must be a workflow (or its name), { on = { kinds... }, workflow = ... }, or a "
             "list of them";
    case kJoin:
      if (IsTable(L, index) || IsOneOf(L, index, {"all", "any"})) return "";
      return "must be \"all\", \"any\", { quorum = k } or { best_effort = seconds }";
    case kString:
      return is_string(index) ? "" : "must be a string";
    case kNonEmptyString:
      return is_string(index) && lua_rawlen(L, index) > 0 ? "" : "must be a non-empty string";
    case kCount:
      return IsCount(L, index) ? "" : "must be a whole number from 1 to 2147483647";
    case kPositive:
      return IsPositiveNumber(L, index) ? "" : "must be a finite number above 0";
    case kLatency:
      return IsSecondsOrZero(L, index) ? "" : "must be a number of seconds from 0 to 1e9";
    case kTemperature:
      if (IsFiniteNumber(L, index) && lua_tonumber(L, index) >= 0 && lua_tonumber(L, index) <= 2) {
        return "";
      }
      return "must be a number between 0 and 2";
    case kProviderKind:
      if (IsOneOf(L, index, {"openai", "anthropic", "mock"})) return "";
      return "must be \"openai\", \"anthropic\" or \"mock\"";
    case kEnvName:
      if (IsEnvName(L, index)) return "";
      return "must name an environment variable (letters, digits and '_', not starting with a "
             "digit)";
    case kFraction:
      if (IsFiniteNumber(L, index) && lua_tonumber(L, index) >= 0 && lua_tonumber(L, index) <= 1) {
        return "";
      }
      return "must be a fraction from 0 to 1 (of the items allowed to fail)";
    case kNodeDecl:
      if (IsNodeDeclaration(L, index)) return "";
      return "must be a node without a name: keel.fn { run = ... }, keel.agent { ... }, ...";
    case kWorkflowRef:
      return IsWorkflowRef(L, index) ? "" : "must be a workflow (or its name)";
    case kRecord:
      if (lua_type(L, index) == LUA_TBOOLEAN) return "";
      if (IsIntegerAtLeast(L, index, static_cast<lua_Integer>(kMinRecordBytes)) &&
          lua_tointeger(L, index) <= static_cast<lua_Integer>(kMaxRecordBytes)) {
        return "";
      }
      return "must be true, false or a number of bytes from " + std::to_string(kMinRecordBytes) +
             " to " + std::to_string(kMaxRecordBytes);
    default:
      return "";
  }
}

}  // namespace

std::string CheckOption(lua_State* L, int index, const DslOption& option) {
  index = lua_absindex(L, index);
  std::string name = "option '" + std::string(option.name) + "'";
  switch (option.type) {
    case kMessages:
      return CheckMessages(L, index, name);
    case kOutput:
      return CheckOutput(L, index, name);
    case kHedge:
      return CheckRecord(L, index, name, kHedgeFields, "{ delay = seconds, max = n }");
    case kPrices:
      return CheckRecord(L, index, name, kPriceFields, "{ input = X, output = Y }");
    case kHealth:
      return CheckRecord(L, index, name, kHealthFields, "{ interval = seconds }");
    case kTools:
      return CheckEntries(L, index, name, "a table of NAME = { description, parameters, run }",
                          &CheckTool);
    case kHeaders:
      return CheckEntries(L, index, name, "a table of header name = value", &CheckHeader);
    case kSecret:
      return name + " is refused: " + kKeysFromEnvironment;
    default: {
      std::string expected = Expectation(L, index, option.type);
      return expected.empty() ? "" : name + " " + expected + Got(L, index);
    }
  }
}

std::string CheckBudget(lua_State* L, int index) {
  index = lua_absindex(L, index);
  std::string problem =
      CheckRecord(L, index, "option 'budget'", kBudgetFields, "{ tokens = n, cost = x }");
  if (!problem.empty()) return problem;
  lua_pushnil(L);
  if (lua_next(L, index) == 0) return "option 'budget' must set tokens, cost or both";
  lua_pop(L, 2);
  return "";
}

}  // namespace keel
