#pragma once
// Sha256Hex: the SHA-256 digest of a byte string, as 64 lowercase hex digits.
// Thread-safe.

#include <string>
#include <string_view>

namespace keel {

std::string Sha256Hex(std::string_view data);

}  // namespace keel
