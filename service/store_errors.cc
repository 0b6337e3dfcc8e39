#include "service/store_errors.h"

#include <httplib.h>

#include "service/json_response.h"

namespace keel::service {

void StoreError(httplib::Response& response, const Status& status) {
  const std::string& message = status.message();
  int code = 409;
  if (message.starts_with("no run '")) {
    code = 404;
  } else if (message.find("is ambiguous") != std::string::npos) {
    code = 400;
  } else if (status.kind() == ErrorKind::kTransient) {
    code = 503;
  }
  JsonError(response, code, message);
}

}  // namespace keel::service
