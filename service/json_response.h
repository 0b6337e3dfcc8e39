#pragma once
// How every API response is written: a JSON body with its content type, and
// errors as {"error": MESSAGE} with a 4xx/5xx status. Free functions; any
// thread.

#include <string>
#include <string_view>

namespace httplib {
struct Response;
}

namespace keel::service {

// Sets `status` and the JSON body `json` (one serialized document).
void JsonBody(httplib::Response& response, int status, std::string json);

// Sets `status` and {"error": message}. `message` must name what was wrong
// (the option, field, run or path) and never echo a secret.
void JsonError(httplib::Response& response, int status, std::string_view message);

}  // namespace keel::service
