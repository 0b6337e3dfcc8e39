#pragma once
// How a failed store call is answered over HTTP: an unknown run is 404, an
// ambiguous prefix 400, a database locked or failing for now 503, anything
// the request asked that the run's state refuses (a finished run cancelled
// or signalled) 409. Free function; any thread.

#include "engine/status.h"

namespace httplib {
struct Response;
}

namespace keel::service {

void StoreError(httplib::Response& response, const Status& status);

}  // namespace keel::service
