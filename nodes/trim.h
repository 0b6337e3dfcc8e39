#pragma once
// TrimBlanks: a text without its leading and trailing spaces, tabs and line
// breaks. A pure function; any thread.

#include <string_view>

namespace keel {

inline std::string_view TrimBlanks(std::string_view text) {
  constexpr std::string_view kBlanks = " \t\r\n";
  size_t begin = text.find_first_not_of(kBlanks);
  if (begin == std::string_view::npos) return {};
  return text.substr(begin, text.find_last_not_of(kBlanks) + 1 - begin);
}

}  // namespace keel
