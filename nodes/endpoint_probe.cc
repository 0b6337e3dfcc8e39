#include "nodes/endpoint_probe.h"

#include <arpa/inet.h>
#include <curl/curl.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <string>

#include "nodes/curl_library.h"

namespace keel {
namespace {

std::string SecondsText(double s) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", s);
  return text;
}

double Info(CURL* easy, CURLINFO info) {
  curl_off_t micros = 0;
  if (curl_easy_getinfo(easy, info, &micros) != CURLE_OK) return 0;
  return static_cast<double>(micros) / 1e6;
}

// Whether the host of `endpoint` (scheme://host:port) is an IP address,
// which needs no name lookup.
bool IpLiteral(const std::string& endpoint) {
  std::string host = endpoint.substr(endpoint.find("://") + 3);
  if (!host.empty() && host.front() == '[') return true;
  host = host.substr(0, host.rfind(':'));
  unsigned char addr[16];
  return inet_pton(AF_INET, host.c_str(), addr) == 1;
}

}  // namespace

std::string EndpointOf(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return "";
  std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return "";
  size_t start = scheme_end + 3;
  size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  if (size_t at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
  if (authority.empty()) return "";
  bool has_port = false;
  if (authority.front() == '[') {
    has_port = authority.find("]:") != std::string::npos;
  } else {
    has_port = authority.find(':') != std::string::npos;
  }
  if (!has_port) authority += scheme == "https" ? ":443" : ":80";
  return scheme + "://" + authority;
}

EndpointProbe ProbeEndpoint(const std::string& url, const std::string& ca_file, double timeout) {
  EndpointProbe probe;
  std::string endpoint = EndpointOf(url);
  if (endpoint.empty()) {
    probe.failed_step = "url";
    probe.error = "base_url is not an http:// or https:// URL";
    return probe;
  }
  probe.tls = endpoint.starts_with("https://");
  std::string curl_error;
  if (!LoadCurl(&curl_error)) {
    probe.failed_step = "connect";
    probe.error = "libcurl is not available: " + curl_error;
    return probe;
  }
  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    probe.failed_step = "connect";
    probe.error = "cannot start a libcurl transfer";
    return probe;
  }
  char error[CURL_ERROR_SIZE] = {0};
  const long millis = std::lround(timeout * 1000);
  curl_easy_setopt(easy, CURLOPT_URL, endpoint.c_str());
  curl_easy_setopt(easy, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, millis);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, millis);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(easy, CURLOPT_PROXY, "");
  if (!ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, ca_file.c_str());
  CURLcode code = curl_easy_perform(easy);
  double dns = Info(easy, CURLINFO_NAMELOOKUP_TIME_T);
  double connect = Info(easy, CURLINFO_CONNECT_TIME_T);
  double tls = Info(easy, CURLINFO_APPCONNECT_TIME_T);
  long os_errno = 0;
  curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno);
  curl_easy_cleanup(easy);
  probe.dns_s = dns;
  probe.connect_s = connect > dns ? connect - dns : 0;
  probe.tls_s = probe.tls && tls > connect ? tls - connect : 0;
  std::string why = error[0] != '\0' ? error : curl_easy_strerror(code);
  switch (code) {
    case CURLE_OK:
      probe.ok = true;
      return probe;
    case CURLE_COULDNT_RESOLVE_HOST:
      probe.failed_step = "dns";
      probe.error = "cannot resolve the host name: " + why;
      return probe;
    case CURLE_COULDNT_CONNECT:
      probe.failed_step = "connect";
      probe.error = os_errno == ECONNREFUSED ? "connection refused (" + why + ")"
                    : os_errno != 0 ? "cannot connect: " + std::string(std::strerror(
                                                               static_cast<int>(os_errno))) +
                                          " (" + why + ")"
                                    : "cannot connect: " + why;
      return probe;
    case CURLE_OPERATION_TIMEDOUT:
      probe.failed_step = dns == 0 && !IpLiteral(endpoint) ? "dns"
                          : connect == 0                       ? "connect"
                                                               : "tls";
      probe.error = "timed out after " + SecondsText(timeout) + " (" + why + ")";
      return probe;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
      probe.failed_step = "tls";
      probe.error = "TLS handshake failed: " + why;
      return probe;
    default:
      probe.failed_step = connect == 0 ? "connect" : "tls";
      probe.error = why;
      return probe;
  }
}

}  // namespace keel
