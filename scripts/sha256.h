#pragma once
// Sha256Hex: the SHA-256 digest of a byte string, as 64 lowercase hex digits,
// or "" in the unlikely case that OpenSSL cannot allocate. Thread-safe.

#include <string>
#include <string_view>

namespace keel {

std::string Sha256Hex(std::string_view data);

}  // namespace keel
