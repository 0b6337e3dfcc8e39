#pragma once
// The dashboard's files (web/), as `keel serve` serves them: the copies
// embedded in the binary at build time (cmake/embed_web.cmake generates
// EmbeddedWebAssets), or the files of a --web-dir read from disk on each
// request. Free functions and immutable data; safe from any thread.

#include <span>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace keel::service {

// One file of web/. The views point into static storage.
struct WebAsset {
  std::string_view path;          // relative to web/: "index.html", "assets/app.js"
  std::string_view content_type;  // e.g. "text/javascript; charset=utf-8"
  std::string_view hash;          // 16 hex digits of the content's SHA-256
  std::string_view data;          // the bytes
};

// Every file under web/ when the binary was built, sorted by path.
std::span<const WebAsset> EmbeddedWebAssets();

// The Content-Type for a file name, by its extension (the table
// cmake/embed_web.cmake uses); application/octet-stream when unknown.
std::string_view ContentTypeFor(std::string_view path);

// A file read from a --web-dir: its bytes and a content hash for the ETag,
// or why there is none.
struct DiskAsset {
  int http_status = 200;  // 200; 400 (path refused) or 404 (no such file)
  std::string error;      // names the path, when not 200
  std::string data;
  std::string hash;  // 16 hex digits (FNV-1a 64 of the bytes)
  std::string content_type;
};

// Reads `relative` ("index.html", "assets/app.js") under the directory
// `root` (absolute and resolved). Refused (400): an empty or absolute path,
// a NUL or a backslash, a "." or ".." segment, and a path whose real
// location (symlinks followed) is outside `root`. 404: no regular file
// there, or one that cannot be read.
DiskAsset ReadDiskAsset(const std::string& root, const std::string& relative);

}  // namespace keel::service
