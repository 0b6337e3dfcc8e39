#pragma once
// Reading the API's query parameters: whole numbers in a range and flags,
// with the 400 answer that names the parameter. Free functions; any HTTP
// worker thread.

#include <cstdint>

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace keel::service {

// What IntParam does with a number above `max`.
enum class AboveMax { kRefuse, kCap };

// Parses query parameter `name` as a whole number from `min` to `max`;
// `fallback` when absent. A number above `max` is refused or capped to it
// (`above`). False after writing a 400 naming the parameter and the range.
bool IntParam(const httplib::Request& request, httplib::Response& response, const char* name,
              int64_t min, int64_t max, int64_t fallback, int64_t* value,
              AboveMax above = AboveMax::kRefuse);

// Whether query parameter `name` is "true" or "1".
bool FlagParam(const httplib::Request& request, const char* name);

}  // namespace keel::service
