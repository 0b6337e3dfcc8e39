#pragma once
// ProbeEndpoint: whether an LLM provider's server can be reached, step by
// step, for `keel doctor`: the host name resolved (DNS), a TCP connection
// opened, and for https the TLS handshake done with the certificate
// verified (against `ca_file` when given, else the system's); no HTTP
// request is sent. Each step is timed; the whole probe gives up after
// `timeout` seconds, so a black-holed address fails with a timeout instead
// of hanging. A free function; any thread; blocks its caller.

#include <string>

namespace keel {

struct EndpointProbe {
  bool ok = false;
  std::string failed_step;  // "dns", "connect" or "tls" when not ok; "url" for a bad URL
  std::string error;        // why, in words: "connection refused", "timed out after 2 s", ...
  bool tls = false;         // https
  // Seconds each step took (0 when it did not run).
  double dns_s = 0;
  double connect_s = 0;
  double tls_s = 0;
};

EndpointProbe ProbeEndpoint(const std::string& url, const std::string& ca_file, double timeout);

// scheme://host:port of `url` (the port made explicit), without path,
// query or user info, safe to print; "" when it is not an http(s) URL.
std::string EndpointOf(const std::string& url);

}  // namespace keel
