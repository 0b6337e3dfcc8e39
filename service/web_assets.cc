#include "service/web_assets.h"


#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace keel::service {
namespace {

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string Fnv1a64Hex(std::string_view data) {
  uint64_t hash = 1469598103934665603ull;
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

// Whether `relative` may name a file under the web directory at all.
bool IsAcceptableRelative(const std::string& relative) {
  if (relative.empty() || relative[0] == '/') return false;
  if (relative.find('\0') != std::string::npos || relative.find('\\') != std::string::npos) {
    return false;
  }
  size_t start = 0;
  while (start <= relative.size()) {
    size_t end = relative.find('/', start);
    if (end == std::string::npos) end = relative.size();
    std::string_view segment(relative.data() + start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    start = end + 1;
  }
  return true;
}

}  // namespace

std::string_view ContentTypeFor(std::string_view path) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".json", "application/json"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"},
      {".woff2", "font/woff2"},
  };
  std::string lower = Lower(path);
  size_t slash = lower.rfind('/');
  std::string_view name = slash == std::string::npos ? std::string_view(lower)
                                                      : std::string_view(lower).substr(slash + 1);
  for (const auto& [ext, type] : kTypes) {
    if (EndsWith(name, ext)) return type;
  }
  return "application/octet-stream";
}

DiskAsset ReadDiskAsset(const std::string& root, const std::string& relative) {
  DiskAsset asset;
  if (!IsAcceptableRelative(relative)) {
    asset.http_status = 400;
    asset.error = "refused web path '" + relative +
                  "': it must be relative, without '.' or '..' segments";
    return asset;
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::path real = fs::canonical(fs::path(root) / relative, ec);
  if (ec) {
    asset.http_status = 404;
    asset.error = "no web file " + relative;
    return asset;
  }
  std::string inside = fs::path(root).lexically_normal().string();
  if (!inside.ends_with('/')) inside += '/';
  if (!real.string().starts_with(inside)) {
    asset.http_status = 400;
    asset.error = "refused web path '" + relative + "': it leads outside the web directory";
    return asset;
  }
  if (!fs::is_regular_file(real, ec)) {
    asset.http_status = 404;
    asset.error = "no web file " + relative;
    return asset;
  }
  std::ifstream in(real, std::ios::binary);
  std::ostringstream bytes;
  if (in.is_open()) bytes << in.rdbuf();
  if (!in.is_open() || in.bad()) {
    asset.http_status = 404;
    asset.error = "cannot read web file " + relative;
    return asset;
  }
  asset.data = std::move(bytes).str();
  asset.hash = Fnv1a64Hex(asset.data);
  asset.content_type = ContentTypeFor(relative);
  return asset;
}

}  // namespace keel::service
