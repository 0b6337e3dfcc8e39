#pragma once
// ScheduleListing: what `keel schedules --json` prints — every keel.schedule
// of every workflow file under a directory, and the files that failed to
// load — and the reader of that JSON, which `keel serve` uses to discover
// schedules without loading Lua itself (it runs the command as a child).
// One shape, written and read here only. Free functions and plain values;
// safe from any thread.

#include <cstdint>
#include <string>
#include <vector>

#include "engine/status.h"
#include "views/json_out.h"

namespace keel {

struct ScheduleListing {
  // "FILE#NAME" or "FILE#N": the file relative to the directory listed, and
  // the schedule's name, or its number in the file (1, 2, ...) when unnamed.
  // Stable while the file keeps its path and the schedule its name or place.
  std::string key;
  std::string file;                // relative to the directory listed
  std::string name;                // "" when unnamed
  int index = 0;                   // 1, 2, ... in the file
  std::string cron;                // "" for an `every` schedule
  int64_t every = 0;               // seconds; 0 for a cron schedule
  std::string workflow;            // the workflow the file returns
  std::string params_json = "{}";  // its params defaults with the schedule's over them
  std::string script_path;         // absolute
  std::string script_sha256;       // hex, of script_text
  std::string script_text;         // the file as it was loaded
  int node_count = 0;              // nodes of the workflow
  int64_t next_tick = 0;           // Unix seconds, after the time of listing
};

struct ScheduleFileError {
  std::string file;  // relative to the directory listed
  std::string error;
};

struct ScheduleListingSet {
  std::vector<ScheduleListing> schedules;  // by file, then in declaration order
  std::vector<ScheduleFileError> errors;   // files that did not load, by file
};

// {"schedules": [{key, file, name, index, cron, every, workflow, params,
// script_path, script_sha256, node_count, next_tick, next_tick_at,
// script_text}, ...], "errors": [{file, error}, ...]}. next_tick_at is
// next_tick as ISO 8601 UTC; cron or every is null when the other is set;
// name is null when unnamed.
void WriteScheduleListingJson(const ScheduleListingSet& set, JsonOut* out);

// Reads what WriteScheduleListingJson wrote. Fails (kPermanent) naming what
// is missing or malformed.
Result<ScheduleListingSet> ParseScheduleListingJson(const std::string& text);

}  // namespace keel
