#include "service/dashboard.h"

#include <httplib.h>

#include <cstdlib>
#include <memory>

#include "service/gzip.h"
#include "service/json_response.h"

namespace keel::service {
namespace {

constexpr const char* kIndex = "index.html";
constexpr const char* kContentSecurityPolicy =
    "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'";

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

// Whether an If-None-Match header names `hash`'s identity or gzip tag, or
// is "*" (the weak comparison RFC 9110 asks for).
bool NoneMatchHits(std::string_view header, std::string_view hash) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view tag = Trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    if (tag == "*") return true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag.size() < 2 || tag.front() != '"' || tag.back() != '"') continue;
    tag = tag.substr(1, tag.size() - 2);
    if (tag.ends_with("-gz")) tag.remove_suffix(3);
    if (tag == hash) return true;
  }
  return false;
}

// Writes one file's answer. `identity` and `gzip` (empty: none) must stay
// alive until the response is written: `owner` holds them when they are
// not static.
void WriteFile(const httplib::Request& request, httplib::Response& response,
               std::string_view content_type, std::string_view hash, std::string_view identity,
               std::string_view gzip, std::shared_ptr<const void> owner) {
  response.set_header("Cache-Control", "no-cache");
  response.set_header("X-Content-Type-Options", "nosniff");
  response.set_header("Vary", "Accept-Encoding");
  if (content_type.starts_with("text/html") || content_type.starts_with("image/svg+xml")) {
    response.set_header("Content-Security-Policy", kContentSecurityPolicy);
    response.set_header("Referrer-Policy", "no-referrer");
  }
  const bool gzipped = !gzip.empty() && AcceptsGzip(request.get_header_value("Accept-Encoding"));
  std::string etag = "\"" + std::string(hash) + (gzipped ? "-gz" : "") + "\"";
  response.set_header("ETag", etag);
  if (request.has_header("If-None-Match") &&
      NoneMatchHits(request.get_header_value("If-None-Match"), hash)) {
    response.status = 304;
    return;
  }
  response.status = 200;
  std::string_view body = gzipped ? gzip : identity;
  if (gzipped) response.set_header("Content-Encoding", "gzip");
  if (body.empty()) {
    response.set_content("", std::string(content_type));
    return;
  }
  // A content provider of known length, rather than a body: cpp-httplib
  // compresses bodies of text types itself, which would encode a gzip body
  // twice and spend the CPU on every request.
  response.set_content_provider(
      body.size(), std::string(content_type),
      [body, owner](size_t offset, size_t length, httplib::DataSink& sink) {
        sink.write(body.data() + offset, length);
        return true;
      });
}

}  // namespace

bool IsDashboardPath(const std::string& path) {
  if (path == "/" || path == "/breakers" || path == "/start") return true;
  if (path.starts_with("/assets/")) return true;
  constexpr std::string_view kRuns = "/runs/";
  return path.size() > kRuns.size() && path.starts_with(kRuns) &&
         path.find('/', kRuns.size()) == std::string::npos;
}

Dashboard::Dashboard(std::string web_dir) : web_dir_(std::move(web_dir)) {
  if (!web_dir_.empty()) return;
  for (const WebAsset& asset : EmbeddedWebAssets()) {
    Embedded entry{&asset, {}};
    auto gzip = Gzip(asset.data, kBestCompression);
    // Kept only when it saves something worth a header.
    if (gzip.ok() && gzip->size() + 64 < asset.data.size()) entry.gzip = std::move(*gzip);
    embedded_.emplace(std::string(asset.path), std::move(entry));
  }
}

void Dashboard::Serve(const httplib::Request& request, httplib::Response& response,
                      const std::string& relative) const {
  if (web_dir_.empty()) {
    auto found = embedded_.find(relative);
    if (found == embedded_.end()) return JsonError(response, 404, "no such asset: /" + relative);
    const WebAsset& asset = *found->second.asset;
    return WriteFile(request, response, asset.content_type, asset.hash, asset.data,
                     found->second.gzip, nullptr);
  }
  DiskAsset file = ReadDiskAsset(web_dir_, relative);
  if (file.http_status != 200) return JsonError(response, file.http_status, file.error);
  auto owned = std::make_shared<std::pair<DiskAsset, std::string>>(std::move(file), "");
  if (AcceptsGzip(request.get_header_value("Accept-Encoding"))) {
    auto gzip = Gzip(owned->first.data, kBestCompression);
    if (gzip.ok() && gzip->size() + 64 < owned->first.data.size()) owned->second = std::move(*gzip);
  }
  const DiskAsset& disk = owned->first;
  WriteFile(request, response, disk.content_type, disk.hash, disk.data, owned->second, owned);
}

void Dashboard::Register(httplib::Server& server) {
  auto page = [this](const httplib::Request& q, httplib::Response& r) { Serve(q, r, kIndex); };
  server.Get("/", page);
  server.Get("/runs/([^/]+)", page);
  server.Get("/breakers", page);
  server.Get("/start", page);
  server.Get("/assets/(.+)", [this](const httplib::Request& q, httplib::Response& r) {
    Serve(q, r, "assets/" + std::string(q.matches[1]));
  });
}

}  // namespace keel::service
