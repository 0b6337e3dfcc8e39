#pragma once
// gzip for what keel serve sends: compressing a body (zlib) and reading a
// client's Accept-Encoding. Free functions; any thread.

#include <string>
#include <string_view>

#include "engine/status.h"

namespace keel::service {

// zlib levels: the dashboard's files are compressed once, at the best
// level; API answers on every request, at a fast one.
inline constexpr int kBestCompression = 9;
inline constexpr int kFastCompression = 3;

// `data` gzip-compressed at `level` (1-9). Fails (kPermanent) only when
// zlib does.
Result<std::string> Gzip(std::string_view data, int level);

// Whether an Accept-Encoding header accepts gzip ("gzip", "x-gzip" or "*",
// without q=0).
bool AcceptsGzip(std::string_view header);

}  // namespace keel::service
