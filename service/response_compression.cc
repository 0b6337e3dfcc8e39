#include "service/response_compression.h"

#include <httplib.h>

#include <string>

#include "service/gzip.h"

namespace keel::service {

void CompressJson(const httplib::Request& request, httplib::Response& response) {
  if (response.body.size() < kCompressFromBytes) return;
  if (!response.get_header_value("Content-Type").starts_with("application/json")) return;
  if (response.has_header("Content-Encoding")) return;
  if (!AcceptsGzip(request.get_header_value("Accept-Encoding"))) return;
  auto gzip = Gzip(response.body, kFastCompression);
  if (!gzip.ok()) return;  // sent as it is
  response.body = std::move(*gzip);
  // cpp-httplib set the length of the body the handler wrote before this
  // handler runs.
  response.headers.erase("Content-Length");
  response.set_header("Content-Length", std::to_string(response.body.size()));
  response.set_header("Content-Encoding", "gzip");
  response.set_header("Vary", "Accept-Encoding");
}

}  // namespace keel::service
