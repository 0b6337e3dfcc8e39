#include "views/format.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <ctime>

namespace keel {
namespace {

std::tm BrokenDown(double wall, bool utc, int* millis) {
  double whole = std::floor(wall);
  *millis = static_cast<int>(std::lround((wall - whole) * 1000));
  if (*millis == 1000) {
    *millis = 0;
    whole += 1;
  }
  std::time_t t = static_cast<std::time_t>(whole);
  std::tm tm{};
  if (utc) {
    gmtime_r(&t, &tm);
  } else {
    localtime_r(&t, &tm);
  }
  return tm;
}

}  // namespace

std::string FormatSeconds(double seconds) {
  if (seconds < 0) seconds = 0;
  std::string text = fmt::format("{:.3f}", seconds);
  while (text.back() == '0') text.pop_back();
  if (text.back() == '.') text.pop_back();
  return text + "s";
}

// The longest duration FormatDuration spells out, in days.
constexpr long long kMaxDurationDays = 1000000;

std::string FormatDuration(double seconds) {
  if (seconds < 10) return FormatSeconds(seconds);
  if (seconds < 60) return fmt::format("{:.1f}s", seconds);
  // Beyond a million days (or not finite) the count of days would overflow.
  if (!(seconds < kMaxDurationDays * 86400.0)) return fmt::format(">{}d", kMaxDurationDays);
  auto total = static_cast<long long>(std::llround(seconds));
  if (total < 3600) return fmt::format("{}m{:02}s", total / 60, total % 60);
  if (total < 86400) return fmt::format("{}h{:02}m", total / 3600, total % 3600 / 60);
  return fmt::format("{}d{:02}h", total / 86400, total % 86400 / 3600);
}

std::string FormatDurationOrDash(std::optional<double> seconds) {
  return seconds ? FormatDuration(*seconds) : "-";
}

std::string FormatCount(int64_t count) {
  std::string digits = std::to_string(count < 0 ? -count : count);
  std::string text;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
    text += digits[i];
  }
  return count < 0 ? "-" + text : text;
}

std::string FormatCost(double cost) {
  if (cost > 0 && cost < 0.00005) return "<0.0001";
  return fmt::format("{:.4f}", cost);
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  double value = static_cast<double>(bytes) / 1024;
  const char* unit = "KiB";
  for (const char* next : {"MiB", "GiB", "TiB"}) {
    if (value < 1024) break;
    value /= 1024;
    unit = next;
  }
  return fmt::format("{:.1f} {}", value, unit);
}

std::string FormatIsoUtc(double wall) {
  int ms = 0;
  std::tm tm = BrokenDown(wall, true, &ms);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::string FormatLocalTime(double wall) {
  int ms = 0;
  std::tm tm = BrokenDown(wall, false, &ms);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string FormatClockTime(double wall) {
  int ms = 0;
  std::tm tm = BrokenDown(wall, false, &ms);
  return fmt::format("{:02}:{:02}:{:02}.{:03}", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

bool ParseDuration(std::string_view text, double* seconds) {
  if (text.size() < 2) return false;
  double unit = 0;
  switch (text.back()) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    case 'w':
      unit = 7 * 86400;
      break;
    default:
      return false;
  }
  std::string number(text.substr(0, text.size() - 1));
  if (number.find_first_not_of("0123456789.") != std::string::npos) return false;
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !(value >= 0) || !std::isfinite(value)) {
    return false;
  }
  *seconds = value * unit;
  return true;
}

size_t DisplayWidth(std::string_view text) {
  size_t width = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++width;
  }
  return width;
}

std::string Truncate(std::string_view text, size_t width) {
  if (DisplayWidth(text) <= width) return std::string(text);
  if (width == 0) return "";
  std::string out;
  size_t kept = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) {
      if (kept == width - 1) break;
      ++kept;
    }
    out += text[i];
  }
  return out + "…";
}

std::string OneLine(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  }
  return out;
}

std::string FirstLine(std::string_view text) {
  return std::string(text.substr(0, text.find('\n')));
}

}  // namespace keel
