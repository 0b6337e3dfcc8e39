#pragma once
// Dashboard: serves the dashboard's page and assets (web/, DESIGN.md §9):
//   GET /, /runs/ID, /breakers, /start  -> index.html (the page routes on
//                                           location.pathname)
//   GET /assets/PATH                     -> web/assets/PATH
// from the copies embedded in the binary, or, with `keel serve --web-dir
// DIR`, from DIR read on each request. Every answer carries a strong ETag
// (304 on If-None-Match), Cache-Control: no-cache and nosniff; HTML also
// the Content-Security-Policy and Referrer-Policy; gzip when the client
// accepts it (embedded files are compressed once, at construction). These
// paths hold no data and are open without the token (IsDashboardPath).
// Immutable after construction; handlers run on any worker thread.

#include <map>
#include <string>

#include "service/component.h"
#include "service/service_options.h"
#include "service/web_assets.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace keel::service {

// Whether `path` is one of the dashboard's page routes or under /assets/
// (never anything under /api).
bool IsDashboardPath(const std::string& path);

class Dashboard final : public Component {
 public:
  // `web_dir`: "" to serve the embedded files; else an absolute, resolved
  // directory holding index.html and assets/.
  explicit Dashboard(std::string web_dir);
  void Register(httplib::Server& server) override;

 private:
  // An embedded file with its gzip form (empty when gzip does not help).
  struct Embedded {
    const WebAsset* asset;
    std::string gzip;
  };

  void Serve(const httplib::Request& request, httplib::Response& response,
             const std::string& relative) const;

  const std::string web_dir_;
  std::map<std::string, Embedded, std::less<>> embedded_;  // by path under web/
};

}  // namespace keel::service
