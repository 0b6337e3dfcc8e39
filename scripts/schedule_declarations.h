#pragma once
// keel.schedule: a workflow file declares when `keel serve` starts the
// workflow it returns.
//
//   keel.schedule { cron = "0 3 * * *", params = { topic = "tea" } }
//   keel.schedule { every = 3600, name = "hourly" }
//
// The options are checked at the declaring line (cron syntax through
// engine/cron_schedule.h, every, params, name, unknown options with a
// did-you-mean); params keys are checked against the workflow the file
// returns once it is known (ApplyScheduleParams).
//
// Thread-safety: the Lua functions touch one lua_State and run on the thread
// that holds it; ApplyScheduleParams is a free function safe from any thread.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/json_text.h"

struct lua_State;

namespace keel {

struct ScheduleDeclaration {
  std::string name;                // the `name` option; "" when not given
  int index = 0;                   // 1, 2, ... in declaration order in the file
  std::string where;               // "file.lua:12"
  std::string cron;                // the cron expression; "" for an `every` schedule
  int64_t every = 0;               // seconds; 0 for a cron schedule
  std::string params_json = "{}";  // the `params` option as given, a JSON object
  // The workflow's params defaults overridden by `params` (ApplyScheduleParams).
  std::string effective_params = "{}";

  // What the key of a schedule ends with: its name, or its number.
  std::string Label() const { return name.empty() ? std::to_string(index) : name; }
};

// Creates the registry list keel.schedule appends to. Once per state.
void InstallSchedules(lua_State* L);
// Sets `schedule` on the table at the top of L's stack.
void AddScheduleFunction(lua_State* L);
// Appends what keel.schedule declared in L, in order.
void ReadSchedules(lua_State* L, std::vector<ScheduleDeclaration>* schedules);

// Fills each schedule's effective_params: `workflow_params` (the workflow's
// `params` defaults, a JSON object) with the schedule's params over them.
// Returns one line per problem, each naming the schedule's file:line: a key
// the workflow does not declare (with a did-you-mean).
std::vector<std::string> ApplyScheduleParams(const JsonText& workflow_params,
                                             const std::string& workflow_name,
                                             std::vector<ScheduleDeclaration>* schedules);

}  // namespace keel
