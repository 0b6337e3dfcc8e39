#include "service/json_response.h"

#include <httplib.h>

#include "views/json_out.h"

namespace keel::service {

void JsonBody(httplib::Response& response, int status, std::string json) {
  response.status = status;
  response.set_content(std::move(json), "application/json; charset=utf-8");
}

void JsonError(httplib::Response& response, int status, std::string_view message) {
  JsonOut out;
  out.BeginObject();
  out.Key("error").String(message);
  out.EndObject();
  JsonBody(response, status, out.Text());
}

}  // namespace keel::service
