#pragma once
// Reads one member of an event's data_json (a small JSON object). Free
// functions; any thread. Absent members, other types and JSON that does not
// parse all read as absent.

#include <optional>
#include <string>

namespace keel {

std::optional<double> NumberField(const std::string& json, const char* name);
// "" when absent.
std::string StringField(const std::string& json, const char* name);

}  // namespace keel
