#pragma once
// RequestGuard: the checks `keel serve` makes on every request before any
// route handler runs (DESIGN.md §9, Security): the bearer token, the path,
// and cross-site browser writes; and the JSON answers for what never reaches
// a handler (unknown path 404, wrong method 405, oversized body 413, a
// request cpp-httplib could not parse 400) or what a handler threw (500).
// Immutable once installed; its checks run on every worker thread at once.

#include <cstddef>
#include <string>

#include "service/route_table.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace keel::service {

// Request bodies larger than this are refused with 413.
inline constexpr size_t kMaxBodyBytes = 1 << 20;

// Paths anyone may ask for without the token: liveness, readiness and the
// dashboard's page and assets, which hold no data (never /api).
bool IsOpenPath(const std::string& path);

// Whether `given` equals `expected` (not empty), in a time that depends only
// on the length of `given`.
bool TokenMatches(const std::string& given, const std::string& expected);

class RequestGuard {
 public:
  // `token`: the bearer token every request (but IsOpenPath) must carry;
  // empty for none.
  explicit RequestGuard(std::string token) : token_(std::move(token)) {}

  // Installs the checks, the error and exception handlers, the body cap,
  // the timeouts and the worker pool on `server`. Call once, after every
  // component has registered its routes (they are read for 405) and before
  // the server listens. `this` must outlive the server's use of it.
  void Install(httplib::Server& server);

  // The check run before routing: false after writing the refusal into
  // `response`.
  bool Admit(const httplib::Request& request, httplib::Response& response) const;

  // Fills in the JSON body of an error `response` that has none yet.
  void DescribeError(const httplib::Request& request, httplib::Response& response) const;

 private:
  const std::string token_;
  RouteTable routes_;
};

}  // namespace keel::service
