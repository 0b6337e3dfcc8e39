#include "scripts/schedule_declarations.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <string_view>

#include "engine/cron_schedule.h"
#include "engine/did_you_mean.h"
#include "lua.hpp"
#include "scripts/active_node.h"
#include "scripts/declaration_registry.h"
#include "scripts/declarations.h"
#include "scripts/lua_json.h"
#include "scripts/lua_trampoline.h"

namespace keel {

using namespace declaration;

namespace {

char kScheduleListKey;

constexpr std::string_view kScheduleOptions[] = {"cron", "every", "params", "name"};

int Raise(lua_State* L, const std::string& message) {
  lua_pushlstring(L, message.data(), message.size());
  return kLuaRaise;
}

bool IsValidName(std::string_view name) {
  if (name.empty() || !(isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) {
    return false;
  }
  for (char c : name) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

// What is wrong with option `key` (at the top of the stack) of the schedule
// being declared, or "". Stores its checked value in the table at `decl`.
std::string CheckOption(lua_State* L, const std::string& key, int value, int decl) {
  if (key == "name") {
    if (lua_type(L, value) != LUA_TSTRING || !IsValidName(lua_tostring(L, value))) {
      return "option 'name' must be a name (letters, digits, '_', '.' and '-', starting with a "
             "letter or '_')";
    }
  } else if (key == "cron") {
    if (lua_type(L, value) != LUA_TSTRING) {
      return std::string("option 'cron' must be a string such as \"0 3 * * *\", got a ") +
             luaL_typename(L, value);
    }
    std::string text = lua_tostring(L, value);
    auto rule = ScheduleRule::Cron(text);
    if (!rule.ok()) return "cron '" + text + "': " + rule.status().message();
  } else if (key == "every") {
    double seconds = lua_type(L, value) == LUA_TNUMBER ? lua_tonumber(L, value) : NAN;
    if (!(seconds >= 1) || seconds != std::floor(seconds) || seconds > 1e12) {
      std::string got = lua_type(L, value) == LUA_TNUMBER
                            ? std::string(lua_tostring(L, value))
                            : std::string("a ") + luaL_typename(L, value);
      return "option 'every' must be a positive whole number of seconds, got " + got;
    }
    lua_pushinteger(L, static_cast<lua_Integer>(seconds));
    lua_setfield(L, decl, "every");
    return "";
  } else if (key == "params") {
    std::string expected = "option 'params' must be a table of name = value";
    if (lua_type(L, value) != LUA_TTABLE) {
      return expected + ", got a " + std::string(luaL_typename(L, value));
    }
    std::string json;
    Status status = LuaToJson(L, value, &json);
    if (!status.ok()) return "option 'params': " + status.message();
    if (json == "[]") json = "{}";
    if (json.front() != '{') return expected + ", not a list";
    lua_pushlstring(L, json.data(), json.size());
    lua_setfield(L, decl, "params");
    return "";
  } else {
    return "unknown option '" + key + "'" + DidYouMean(key, kScheduleOptions) +
           "; a schedule takes cron or every, params and name";
  }
  lua_pushvalue(L, value);
  lua_setfield(L, decl, key.c_str());
  return "";
}

// keel.schedule { options }.
int Schedule(lua_State* L) {
  const std::string where = CallerWhere(L);
  if (ActiveNodeOf(L) != nullptr) {
    return Raise(L, where + ": keel.schedule can only be used while the script loads");
  }
  if (lua_type(L, 1) != LUA_TTABLE) {
    return Raise(L, where +
                        ": keel.schedule expects a table of options (cron or every, params, "
                        "name), got " +
                        luaL_typename(L, 1));
  }
  lua_settop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kScheduleListKey);  // 2
  const lua_Integer index = static_cast<lua_Integer>(lua_rawlen(L, 2)) + 1;
  std::string prefix = where + ": schedule " + std::to_string(index) + ": ";
  RawField(L, 1, "name");
  if (lua_type(L, -1) == LUA_TSTRING) prefix = where + ": schedule '" + lua_tostring(L, -1) + "': ";
  lua_pop(L, 1);
  lua_createtable(L, 0, 6);  // 3: the declaration
  lua_pushlstring(L, where.data(), where.size());
  lua_setfield(L, 3, "where");
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {  // key at 4, value at 5
    if (lua_type(L, 4) != LUA_TSTRING) {
      return Raise(
          L, prefix + "options are name = value pairs; found a " + luaL_typename(L, 4) + " key");
    }
    std::string problem = CheckOption(L, lua_tostring(L, 4), 5, 3);
    if (!problem.empty()) return Raise(L, prefix + problem);
    lua_settop(L, 4);
  }
  RawField(L, 3, "cron");
  RawField(L, 3, "every");
  bool has_cron = !lua_isnil(L, -2);
  bool has_every = !lua_isnil(L, -1);
  lua_pop(L, 2);
  if (has_cron && has_every) {
    return Raise(L, prefix + "options 'cron' and 'every' exclude each other; give one");
  }
  if (!has_cron && !has_every) {
    return Raise(L, prefix +
                        "a schedule needs option 'cron' (\"m h dom mon dow\") or 'every' "
                        "(seconds)");
  }
  const std::string name = RawString(L, 3, "name");
  for (lua_Integer i = 1; i < index && !name.empty(); ++i) {
    lua_rawgeti(L, 2, i);
    if (RawString(L, -1, "name") == name) {
      return Raise(L, where + ": schedule '" + name + "' is declared twice (first at " +
                          RawString(L, -1, "where") + ")");
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, 3);
  lua_rawseti(L, 2, index);
  return 0;
}

}  // namespace

void InstallSchedules(lua_State* L) {
  lua_createtable(L, 0, 0);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kScheduleListKey);
}

void AddScheduleFunction(lua_State* L) {
  lua_pushcfunction(L, &LuaTrampoline<Schedule>);
  lua_setfield(L, -2, "schedule");
}

void ReadSchedules(lua_State* L, std::vector<ScheduleDeclaration>* schedules) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kScheduleListKey);
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return;
  }
  lua_Integer n = static_cast<lua_Integer>(lua_rawlen(L, -1));
  for (lua_Integer i = 1; i <= n; ++i) {
    lua_rawgeti(L, -1, i);
    ScheduleDeclaration& s = schedules->emplace_back();
    s.index = static_cast<int>(i);
    s.name = RawString(L, -1, "name");
    s.where = RawString(L, -1, "where");
    s.cron = RawString(L, -1, "cron");
    RawField(L, -1, "every");
    s.every = lua_tointeger(L, -1);
    lua_pop(L, 1);
    std::string params = RawString(L, -1, "params");
    if (!params.empty()) s.params_json = params;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

std::vector<std::string> ApplyScheduleParams(const JsonText& workflow_params,
                                             const std::string& workflow_name,
                                             std::vector<ScheduleDeclaration>* schedules) {
  std::vector<std::string> problems;
  for (ScheduleDeclaration& s : *schedules) {
    rapidjson::Document params;
    params.Parse(workflow_params ? workflow_params->c_str() : "{}");
    if (params.HasParseError() || !params.IsObject()) params.SetObject();
    std::vector<std::string> declared;
    for (const auto& m : params.GetObject()) declared.emplace_back(m.name.GetString());
    rapidjson::Document given;
    given.Parse(s.params_json.c_str());
    if (given.HasParseError() || !given.IsObject()) given.SetObject();
    const std::string prefix = s.where + ": schedule " +
                               (s.name.empty() ? std::to_string(s.index) : "'" + s.name + "'") +
                               ": ";
    for (auto& m : given.GetObject()) {
      const std::string key = m.name.GetString();
      auto existing = params.FindMember(key.c_str());
      if (existing == params.MemberEnd()) {
        std::string known;
        for (const std::string& d : declared) known += (known.empty() ? "" : ", ") + d;
        problems.push_back(prefix + "params: workflow '" + workflow_name +
                           "' declares no parameter '" + key + "'" + DidYouMean(key, declared) +
                           (known.empty() ? "; it declares none" : "; it declares " + known));
        continue;
      }
      existing->value.CopyFrom(m.value, params.GetAllocator());
    }
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    params.Accept(writer);
    s.effective_params = std::string(buffer.GetString(), buffer.GetSize());
  }
  return problems;
}

}  // namespace keel
