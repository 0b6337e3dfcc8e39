#include "nodes/http_transfer.h"

#include <strings.h>

#include <algorithm>
#include <cstdio>
#include <string_view>

#include "engine/utf8.h"

namespace keel {
namespace {

// The URL without user info, query or fragment: what error messages may show.
std::string RedactedUrl(const std::string& url) {
  std::string shown = url.substr(0, url.find_first_of("?#"));
  size_t authority = shown.find("://");
  authority = authority == std::string::npos ? 0 : authority + 3;
  size_t path = shown.find('/', authority);
  size_t at = shown.rfind('@', path == std::string::npos ? shown.size() : path);
  if (at != std::string::npos && at >= authority) shown.erase(authority, at + 1 - authority);
  return shown;
}

std::string FormatSeconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", seconds);
  return text;
}

std::string Described(const HttpRequest& request) {
  return request.method + " " + RedactedUrl(request.url) + ": ";
}

// Returning less than it got makes curl abort the transfer (CURLE_WRITE_ERROR).
size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  if (n >
      t->request.max_body_bytes - std::min(t->request.max_body_bytes, t->response.body.size())) {
    t->too_large = true;
    return 0;
  }
  t->response.body.append(data, n);
  return n;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  static_cast<Transfer*>(user)->response.AddHeaderLine(std::string_view(data, size * count));
  return size * count;
}

// Failures that a retry cannot fix.
bool IsPermanent(CURLcode code) {
  return code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL ||
         code == CURLE_NOT_BUILT_IN || code == CURLE_BAD_FUNCTION_ARGUMENT;
}

// The server's certificate did not verify, or the trusted certificates could
// not be read: the same will happen on every retry.
bool IsCertificateProblem(CURLcode code) {
  return code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE ||
         code == CURLE_SSL_CERTPROBLEM || code == CURLE_SSL_ISSUER_ERROR ||
         code == CURLE_SSL_PINNEDPUBKEYNOTMATCH || code == CURLE_SSL_CRL_BADFILE;
}

// "67108864 bytes (64 MiB)", or "1000 bytes".
std::string FormatBytes(size_t bytes) {
  std::string text = std::to_string(bytes) + " bytes";
  constexpr size_t kMiB = size_t{1} << 20;
  if (bytes >= kMiB && bytes % kMiB == 0) text += " (" + std::to_string(bytes / kMiB) + " MiB)";
  return text;
}

bool IsHttps(const std::string& url) { return strncasecmp(url.c_str(), "https://", 8) == 0; }

}  // namespace

void PrepareEasy(CURL* easy, Transfer* t) {
  const HttpRequest& request = t->request;
  curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  // CheckScheme already keeps other schemes away; this also covers redirects.
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  // Refuses a body whose Content-Length is over the limit before it comes;
  // OnBody stops one without a length once it passes the limit.
  curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(request.max_body_bytes));
  // Replies are a few KiB; a 4 KiB receive buffer instead of curl's 16 KiB
  // means fewer fresh pages for a burst of new handles.
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 4096L);
  if (request.http2 && IsHttps(request.url)) {
    // HTTP/2 when the server offers it (ALPN), and then every request to it
    // shares one connection: a burst waits for that connection instead of
    // opening (and TLS-handshaking) one each.
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_2TLS));
    curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
  } else {
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  }
  if (!request.ca_file.empty()) curl_easy_setopt(easy, CURLOPT_CAINFO, request.ca_file.c_str());
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
  if (t->timeout_ms > 0) curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, t->timeout_ms);
  if (request.connect_timeout > 0) {
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     std::max(1L, static_cast<long>(request.connect_timeout * 1000)));
  }

  if (request.method == "GET" && request.body.empty()) {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else {
    if (!request.body.empty() || request.method == "POST") {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.c_str());
    }
    if (request.method != "POST") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  }

  bool has_expect = false;
  std::string line;
  for (const auto& [name, value] : request.headers) {
    has_expect = has_expect || strcasecmp(name.c_str(), "expect") == 0;
    // "Name;" is how curl sends a header with an empty value.
    line.assign(name).append(value.empty() ? ";" : ": ").append(value);
    t->header_list = curl_slist_append(t->header_list, line.c_str());
  }
  // No "Expect: 100-continue" round trip before large bodies.
  if (!has_expect) t->header_list = curl_slist_append(t->header_list, "Expect:");
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->header_list);
}

Status TransferFailure(const Transfer& t, CURLcode code, double waited) {
  std::string what = Described(t.request);
  std::string detail = ReplaceInvalidUtf8(t.error[0] != '\0' ? t.error : curl_easy_strerror(code));
  if (code == CURLE_OPERATION_TIMEDOUT) {
    curl_off_t total_us = 0;
    curl_easy_getinfo(t.easy, CURLINFO_TOTAL_TIME_T, &total_us);
    // The request's deadline, or only the connect timeout before it?
    if (t.timeout_ms > 0 && total_us + 1000 >= t.timeout_ms * 1000) {
      return Status::Error(ErrorKind::kTimeout,
                           what + "timed out after " + FormatSeconds(waited) + " s");
    }
    return Status::Error(ErrorKind::kTransient, what + detail);
  }
  if (t.too_large || code == CURLE_FILESIZE_EXCEEDED) {
    return Status::Error(ErrorKind::kPermanent, what +
                                                    "the reply body is larger than the limit of " +
                                                    FormatBytes(t.request.max_body_bytes));
  }
  if (code == CURLE_SSL_CACERT_BADFILE || code == CURLE_SSL_CRL_BADFILE) {
    return Status::Error(ErrorKind::kPermanent,
                         what + "the trusted certificates could not be read: " + detail);
  }
  if (IsCertificateProblem(code)) {
    return Status::Error(ErrorKind::kPermanent,
                         what + "the server's TLS certificate could not be verified: " + detail);
  }
  return Status::Error(IsPermanent(code) ? ErrorKind::kPermanent : ErrorKind::kTransient,
                       what + detail);
}

Status CheckScheme(const HttpRequest& request) {
  if (IsHttps(request.url) || strncasecmp(request.url.c_str(), "http://", 7) == 0) {
    return Status::Ok();
  }
  return Status::Error(ErrorKind::kPermanent,
                       Described(request) + "only http:// and https:// URLs are supported");
}

Status TimedOutBeforeSent(const HttpRequest& request, double waited) {
  return Status::Error(ErrorKind::kTimeout, Described(request) + "timed out after " +
                                                FormatSeconds(waited) + " s before it was sent");
}

}  // namespace keel
