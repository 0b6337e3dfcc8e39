// Fuzzes how a response's header lines are taken in and read back
// (HttpResponse::AddHeaderLine, Header, RetryAfter in nodes/http_response.cc).
// The input is the header block as it came off the wire, one line per '\n'
// (a trailing '\r' kept, as curl hands lines over). Properties: no crash;
// every stored name is lower case; RetryAfter is -1 or a finite number >= 0.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "nodes/http_loop.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  keel::HttpResponse response;
  while (!input.empty()) {
    size_t end = input.find('\n');
    response.AddHeaderLine(input.substr(0, end == std::string_view::npos ? end : end + 1));
    input = end == std::string_view::npos ? std::string_view() : input.substr(end + 1);
  }
  for (const auto& [name, value] : response.headers) {
    FUZZ_CHECK(!name.empty(), value);
    for (char c : name) FUZZ_CHECK(!(c >= 'A' && c <= 'Z'), name);
  }
  for (double now : {0.0, 1.7e9, -1e300, 1e300}) {
    double wait = response.RetryAfter(now);
    FUZZ_CHECK(wait == -1 || (std::isfinite(wait) && wait >= 0), std::to_string(wait));
  }
  (void)response.Header("content-type");
  return 0;
}
