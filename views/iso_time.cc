#include "views/iso_time.h"

#include <ctime>
#include <string>

namespace keel {
namespace {

// Reads exactly `n` digits at `*i`.
bool Digits(std::string_view text, size_t* i, int n, int* value) {
  if (*i + n > text.size()) return false;
  *value = 0;
  for (int k = 0; k < n; ++k) {
    char c = text[*i + k];
    if (c < '0' || c > '9') return false;
    *value = *value * 10 + (c - '0');
  }
  *i += n;
  return true;
}

bool Take(std::string_view text, size_t* i, char c) {
  if (*i < text.size() && text[*i] == c) {
    ++*i;
    return true;
  }
  return false;
}

}  // namespace

bool ParseIsoTime(std::string_view text, double* wall) {
  size_t i = 0;
  std::tm tm{};
  int year, month, day, hour = 0, minute = 0, second = 0;
  double fraction = 0;
  if (!Digits(text, &i, 4, &year) || !Take(text, &i, '-') || !Digits(text, &i, 2, &month) ||
      !Take(text, &i, '-') || !Digits(text, &i, 2, &day)) {
    return false;
  }
  if (Take(text, &i, 'T') || Take(text, &i, ' ')) {
    if (!Digits(text, &i, 2, &hour) || !Take(text, &i, ':') || !Digits(text, &i, 2, &minute)) {
      return false;
    }
    if (Take(text, &i, ':')) {
      if (!Digits(text, &i, 2, &second)) return false;
      if (Take(text, &i, '.')) {
        double scale = 0.1;
        size_t start = i;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
          fraction += (text[i] - '0') * scale;
          scale /= 10;
          ++i;
        }
        if (i == start) return false;
      }
    }
  }
  int offset = 0;  // seconds east of UTC
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    int sign = text[i] == '-' ? -1 : 1;
    ++i;
    int oh, om = 0;
    if (!Digits(text, &i, 2, &oh)) return false;
    Take(text, &i, ':');
    if (i < text.size() && !Digits(text, &i, 2, &om)) return false;
    offset = sign * (oh * 3600 + om * 60);
  } else {
    Take(text, &i, 'Z');
  }
  if (i != text.size()) return false;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return false;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  *wall = static_cast<double>(timegm(&tm)) - offset + fraction;
  return true;
}

}  // namespace keel
