#include "service/query_params.h"

#include <httplib.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string>

#include "service/json_response.h"

namespace keel::service {

bool IntParam(const httplib::Request& request, httplib::Response& response, const char* name,
              int64_t min, int64_t max, int64_t fallback, int64_t* value, AboveMax above) {
  if (!request.has_param(name)) {
    *value = fallback;
    return true;
  }
  std::string text = request.get_param_value(name);
  char* end = nullptr;
  errno = 0;
  long long parsed = std::strtoll(text.c_str(), &end, 10);
  bool too_big = parsed > max && above == AboveMax::kRefuse;
  if (text.empty() || *end != '\0' || errno != 0 || parsed < min || too_big) {
    JsonError(response, 400,
              std::string("query parameter ") + name + ": expected a whole number from " +
                  std::to_string(min) + " to " + std::to_string(max));
    return false;
  }
  *value = std::min<long long>(parsed, max);
  return true;
}

bool FlagParam(const httplib::Request& request, const char* name) {
  std::string value = request.get_param_value(name);
  return value == "true" || value == "1";
}

}  // namespace keel::service
