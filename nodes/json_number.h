#pragma once
// ReadJsonNumber: the value of a JSON number's text, read exactly, for
// parsers that take numbers as text from RapidJSON
// (kParseNumbersAsStringsFlag, the handler's RawNumber). RapidJSON 1.1's own
// conversion is off by an ulp or more by default and, with
// kParseFullPrecisionFlag, reads a zero with a large exponent ("0e89") as
// -8.25e267. A free function; any thread.

#include <locale.h>
#include <stdlib.h>

#include <cerrno>
#include <cstdint>
#include <string_view>

namespace keel {

struct JsonNumber {
  enum Kind { kInt64, kUint64, kDouble };
  Kind kind = kDouble;
  int64_t i = 0;   // kInt64
  uint64_t u = 0;  // kUint64: above INT64_MAX only
  double d = 0;    // kDouble: infinite when the number is too big for a double
};

// `text` (NUL-terminated, `len` bytes) must be a number in JSON's grammar,
// as RapidJSON hands it over. Integers without fraction or exponent that
// fit 64 bits stay integers; others are the nearest double (0 for a tiny one).
inline JsonNumber ReadJsonNumber(const char* text, size_t len) {
  JsonNumber n;
  if (std::string_view(text, len).find_first_of(".eE") == std::string_view::npos) {
    errno = 0;
    if (text[0] == '-') {
      long long v = strtoll(text, nullptr, 10);
      if (errno != ERANGE) {
        n.kind = JsonNumber::kInt64;
        n.i = v;
        return n;
      }
    } else {
      unsigned long long v = strtoull(text, nullptr, 10);
      if (errno != ERANGE) {
        if (v <= static_cast<unsigned long long>(INT64_MAX)) {
          n.kind = JsonNumber::kInt64;
          n.i = static_cast<int64_t>(v);
        } else {
          n.kind = JsonNumber::kUint64;
          n.u = v;
        }
        return n;
      }
    }
  }
  // The "C" locale: a decimal point is '.' whatever LC_NUMERIC says.
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", static_cast<locale_t>(0));
  n.d = strtod_l(text, nullptr, c_locale);
  return n;
}

}  // namespace keel
