#include "service/request_guard.h"

#include <httplib.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "service/dashboard.h"
#include "service/json_response.h"
#include "service/response_compression.h"

namespace keel::service {
namespace {

// Worker threads: each open connection holds one (keep-alive, a slow
// client, an event stream), so this covers ~100 long-lived streams plus a
// load generator's 100 connections and some to spare. Idle threads cost
// only their stacks' address space.
constexpr size_t kWorkerThreads = 256;
// Seconds one read or write on a connection may block, and an idle
// keep-alive connection is kept. A client sending a request slowly holds
// only its own worker; the others go on answering.
constexpr time_t kReadTimeout = 5;
constexpr time_t kWriteTimeout = 5;
constexpr time_t kKeepAliveTimeout = 3;
// Requests one connection may carry before it is closed.
constexpr size_t kKeepAliveRequests = 1000;

bool IsWriteMethod(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

std::string Lower(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

// "host:port" of a Host header or an Origin's authority, lower case, with
// the scheme's default port made explicit.
std::string Authority(std::string text, const std::string& scheme) {
  text = Lower(std::move(text));
  size_t colon = text.rfind(':');
  size_t bracket = text.rfind(']');
  bool has_port = colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  if (!has_port) text += scheme == "https" ? ":443" : ":80";
  return text;
}

// Whether the browser says this request comes from another site: a
// Sec-Fetch-Site of cross-site, or an Origin whose host and port differ
// from the Host the request was sent to.
bool IsCrossSite(const httplib::Request& request) {
  if (Lower(request.get_header_value("Sec-Fetch-Site")) == "cross-site") return true;
  if (!request.has_header("Origin")) return false;
  std::string origin = request.get_header_value("Origin");
  size_t scheme_end = origin.find("://");
  if (scheme_end == std::string::npos) return true;  // "null" and the like
  std::string scheme = Lower(origin.substr(0, scheme_end));
  std::string authority = origin.substr(scheme_end + 3);
  if (size_t slash = authority.find('/'); slash != std::string::npos) authority.resize(slash);
  return Authority(authority, scheme) != Authority(request.get_header_value("Host"), "http");
}

bool HasBody(const httplib::Request& request) {
  if (request.has_header("Transfer-Encoding")) return true;
  std::string length = request.get_header_value("Content-Length");
  return !length.empty() && length.find_first_not_of('0') != std::string::npos;
}

bool IsJsonContentType(const std::string& value) {
  std::string type = Lower(value.substr(0, value.find(';')));
  while (!type.empty() && type.back() == ' ') type.pop_back();
  return type == "application/json";
}

// A path no route can mean: control characters (a NUL among them) or a
// "." or ".." segment, as typed or percent-encoded (cpp-httplib has decoded
// it by now).
bool IsBadPath(const std::string& path) {
  if (path.empty() || path[0] != '/') return true;
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) return true;
  }
  size_t start = 1;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view segment(path.data() + start, end - start);
    if (segment == "." || segment == "..") return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

bool IsOpenPath(const std::string& path) {
  return path == "/livez" || path == "/readyz" || IsDashboardPath(path);
}

bool TokenMatches(const std::string& given, const std::string& expected) {
  if (expected.empty()) return false;
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i] ^ expected[i % expected.size()]);
  }
  return diff == 0;
}

bool RequestGuard::Admit(const httplib::Request& request, httplib::Response& response) const {
  if (IsBadPath(request.path)) {
    JsonError(response, 400, "bad path: control characters or a '.' or '..' segment");
    return false;
  }
  if (!token_.empty() && !IsOpenPath(request.path)) {
    std::string header = request.get_header_value("Authorization");
    constexpr std::string_view kBearer = "Bearer ";
    bool ok = header.size() > kBearer.size() && header.compare(0, kBearer.size(), kBearer) == 0 &&
              TokenMatches(header.substr(kBearer.size()), token_);
    if (!ok) {
      response.set_header("WWW-Authenticate", "Bearer");
      JsonError(response, 401,
                header.empty() ? "authentication required: send Authorization: Bearer TOKEN"
                               : "wrong token in the Authorization header");
      return false;
    }
  }
  // A body announced larger than the cap is refused before it is read.
  std::string length = request.get_header_value("Content-Length");
  if (length.size() > 9 || (!length.empty() && std::strtoull(length.c_str(), nullptr, 10) >
                                                   kMaxBodyBytes)) {
    response.set_header("Connection", "close");
    JsonError(response, 413, "request body too large: the limit is " +
                                 std::to_string(kMaxBodyBytes) + " bytes");
    return false;
  }
  if (IsWriteMethod(request.method)) {
    if (IsCrossSite(request)) {
      JsonError(response, 403, "cross-site request refused: the Origin is not this server");
      return false;
    }
    if ((request.method == "POST" || request.method == "PUT" || request.method == "PATCH") &&
        !request.has_header("Content-Length") && !request.has_header("Transfer-Encoding")) {
      JsonError(response, 411, "send a Content-Length (0 for no body)");
      return false;
    }
    if (HasBody(request) && !IsJsonContentType(request.get_header_value("Content-Type"))) {
      JsonError(response, 415, "a request body must be sent as Content-Type: application/json");
      return false;
    }
  }
  return true;
}

void RequestGuard::DescribeError(const httplib::Request& request,
                                 httplib::Response& response) const {
  if (!response.body.empty()) return;
  switch (response.status) {
    case 400:
      JsonError(response, 400, "bad request: not a well-formed HTTP request");
      return;
    case 404: {
      std::string allowed = routes_.AllowedMethods(request.path);
      if (!allowed.empty()) {
        response.set_header("Allow", allowed);
        JsonError(response, 405, "method " + request.method + " not allowed here; allowed: " +
                                     allowed);
        return;
      }
      JsonError(response, 404, "no such endpoint");
      return;
    }
    case 413:
      JsonError(response, 413, "request body too large: the limit is " +
                                   std::to_string(kMaxBodyBytes) + " bytes");
      return;
    case 414:
      JsonError(response, 414, "request line too long");
      return;
    default:
      JsonError(response, response.status,
                response.status >= 500 ? "internal error" : "request refused");
  }
}

void RequestGuard::Install(httplib::Server& server) {
  routes_.Collect(server);
  server.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  // A response goes out as headers then body in two writes; with Nagle's
  // algorithm the second waits for the client's delayed ACK (40 ms).
  server.set_tcp_nodelay(true);
  server.set_payload_max_length(kMaxBodyBytes);

  server.set_read_timeout(kReadTimeout, 0);
  server.set_write_timeout(kWriteTimeout, 0);
  server.set_keep_alive_timeout(kKeepAliveTimeout);
  server.set_keep_alive_max_count(kKeepAliveRequests);
  server.set_pre_routing_handler([this](const httplib::Request& request,
                                        httplib::Response& response) {
    return Admit(request, response) ? httplib::Server::HandlerResponse::Unhandled
                                    : httplib::Server::HandlerResponse::Handled;
  });
  httplib::Server::HandlerWithResponse on_error = [this](const httplib::Request& request,
                                                         httplib::Response& response) {
    DescribeError(request, response);
    return httplib::Server::HandlerResponse::Handled;
  };
  server.set_error_handler(std::move(on_error));
  server.set_post_routing_handler(CompressJson);
  server.set_exception_handler(
      [](const httplib::Request& request, httplib::Response& response, std::exception_ptr error) {
        std::string what = "unknown exception";
        try {
          if (error) std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        std::fprintf(stderr, "keel serve: %s %s failed: %s\n", request.method.c_str(),
                     request.path.c_str(), what.c_str());
        response.body.clear();
        JsonError(response, 500, "internal error");
      });
}

}  // namespace keel::service
