#pragma once
// UTF-8 checks for text that ends up in JSON: event data in the store and
// the CLI's --json output must stay valid UTF-8 whatever bytes a script or a
// server produced. Free functions; safe from any thread.

#include <string>
#include <string_view>

namespace keel {

// Whether `text` is well-formed UTF-8 (no overlong forms, surrogates or
// code points above U+10FFFF).
bool IsUtf8(std::string_view text);

// `text` with every byte that does not start a well-formed sequence replaced
// by U+FFFD; unchanged when it is valid already.
std::string ReplaceInvalidUtf8(std::string_view text);

// The number of characters (code points) in UTF-8 `text`, as SQL's substr
// and length count them: bytes that do not continue a sequence.
size_t Utf8Length(std::string_view text);

}  // namespace keel
