#pragma once
// Compresses the API's JSON answers with gzip when the client accepts it,
// at a fast zlib level, after the handler wrote them (a post-routing
// handler). cpp-httplib, as Debian builds it, would otherwise compress
// every JSON body itself with brotli at its highest quality when a browser
// offers `br`: megabytes of a big run's JSON then took many seconds. JSON
// answers therefore say `application/json; charset=utf-8`, a type
// cpp-httplib leaves alone. Free function; any HTTP worker thread.

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace keel::service {

// Bodies smaller than this go as they are.
inline constexpr unsigned kCompressFromBytes = 1024;

// The post-routing handler: gzips a JSON body of kCompressFromBytes or more
// when the request accepts gzip, and says so (Content-Encoding, Vary).
void CompressJson(const httplib::Request& request, httplib::Response& response);

}  // namespace keel::service
