#include "service/health.h"

#include <httplib.h>

#include "service/json_response.h"
#include "views/json_out.h"

namespace keel::service {

void Health::Register(httplib::Server& server) {
  server.Get("/livez", [](const httplib::Request&, httplib::Response& response) {
    JsonBody(response, 200, R"({"status":"ok"})");
  });
  server.Get("/readyz", [this](const httplib::Request&, httplib::Response& response) {
    Status ready = store_.CheckReady();
    JsonOut out;
    out.BeginObject();
    if (ready.ok()) {
      out.Key("status").String("ready");
    } else {
      out.Key("status").String("not ready");
      out.Key("error").String(ready.message());
    }
    out.EndObject();
    JsonBody(response, ready.ok() ? 200 : 503, out.Text());
  });
}

}  // namespace keel::service
