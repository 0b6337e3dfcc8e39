#include "engine/cron_schedule.h"

#include <algorithm>
#include <cctype>
#include <limits>
#include <string_view>
#include <vector>

#include "engine/did_you_mean.h"

namespace keel {
namespace {

constexpr std::string_view kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                            "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::string_view kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct Macro {
  std::string_view name;
  std::string_view expansion;
};
constexpr Macro kMacros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

// One of the five fields: its name, range, and the names its values may take
// (names[i] stands for min + i).
struct Field {
  const char* name;
  int min;
  int max;
  const std::string_view* names = nullptr;
  size_t name_count = 0;
  const char* names_hint = "";
};

Status Bad(const std::string& message) { return Status::Error(ErrorKind::kPermanent, message); }

std::string Lower(std::string_view text) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower;
}

// A value of `field`: a number, or one of its names.
Status ParseValue(const Field& field, std::string_view text, int* value) {
  if (text.empty()) return Bad(std::string(field.name) + ": a value is missing");
  if (std::isdigit(static_cast<unsigned char>(text[0]))) {
    int64_t n = 0;
    for (char c : text) {
      if (!std::isdigit(static_cast<unsigned char>(c))) {
        return Bad(std::string(field.name) + ": '" + std::string(text) + "' is not a number");
      }
      n = n * 10 + (c - '0');
      if (n > 1000000) break;
    }
    if (n < field.min || n > field.max) {
      return Bad(std::string(field.name) + " " + std::string(text) + " out of range " +
                 std::to_string(field.min) + "-" + std::to_string(field.max));
    }
    *value = static_cast<int>(n);
    return Status::Ok();
  }
  std::string lower = Lower(text);
  for (size_t i = 0; i < field.name_count; ++i) {
    if (lower == field.names[i]) {
      *value = field.min + static_cast<int>(i);
      return Status::Ok();
    }
  }
  if (field.name_count > 0) {
    return Bad(std::string(field.name) + ": '" + std::string(text) +
               "' is neither a number nor a " + field.names_hint);
  }
  return Bad(std::string(field.name) + ": '" + std::string(text) + "' is not a number");
}

// Sets in *bits every value `text` (one field of the expression) selects.
template <size_t N>
Status ParseField(const Field& field, std::string_view text, std::bitset<N>* bits) {
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string_view item = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (item.empty()) {
      return Bad(std::string(field.name) + ": empty item in list '" + std::string(text) + "'");
    }
    int step = 1;
    size_t slash = item.find('/');
    std::string_view range = item.substr(0, slash);
    if (slash != std::string_view::npos) {
      std::string_view step_text = item.substr(slash + 1);
      int64_t n = 0;
      bool digits = !step_text.empty() && step_text.size() <= 6;
      for (char c : step_text) {
        digits = digits && std::isdigit(static_cast<unsigned char>(c));
        if (digits) n = n * 10 + (c - '0');
      }
      if (!digits || n < 1) {
        return Bad(std::string(field.name) + ": step must be a whole number of at least 1, got '" +
                   std::string(step_text) + "'");
      }
      step = static_cast<int>(n);
    }
    int low = field.min;
    int high = field.max;
    if (range == "*") {
      // the whole range
    } else {
      size_t dash = range.find('-');
      Status s = ParseValue(field, range.substr(0, dash), &low);
      if (!s.ok()) return s;
      if (dash != std::string_view::npos) {
        s = ParseValue(field, range.substr(dash + 1), &high);
        if (!s.ok()) return s;
        if (high < low) {
          return Bad(std::string(field.name) + ": range " + std::string(range) + " runs backwards");
        }
      } else if (slash == std::string_view::npos) {
        high = low;
      }
    }
    for (int v = low; v <= high; v += step) bits->set(static_cast<size_t>(v));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return Status::Ok();
}

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

constexpr int64_t kDay = 86400;

}  // namespace

int64_t DaysFromCivil(int year, int month, int day) {
  // Howard Hinnant's days_from_civil.
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t yoe = year - era * 400;
  const int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t days, int* year, int* month, int* day) {
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *year = static_cast<int>(yoe + era * 400 + (*month <= 2 ? 1 : 0));
}

Result<CronSchedule> CronSchedule::Parse(const std::string& text) {
  std::string_view expr = text;
  std::string expanded;
  size_t first = expr.find_first_not_of(" \t");
  size_t last = expr.find_last_not_of(" \t");
  std::string_view trimmed =
      first == std::string_view::npos ? std::string_view() : expr.substr(first, last - first + 1);
  if (trimmed.starts_with('@')) {
    std::string lower = Lower(trimmed);
    const Macro* found = nullptr;
    std::vector<std::string> names;
    for (const Macro& m : kMacros) {
      if (lower == m.name) found = &m;
      names.emplace_back(m.name);
    }
    if (found == nullptr) {
      return Bad("unknown macro '" + std::string(trimmed) + "'" + DidYouMean(lower, names) +
                 "; use @hourly, @daily, @weekly, @monthly or @yearly");
    }
    expanded = std::string(found->expansion);
    expr = expanded;
  }
  std::vector<std::string_view> fields;
  size_t pos = 0;
  while (pos < expr.size()) {
    size_t begin = expr.find_first_not_of(" \t", pos);
    if (begin == std::string_view::npos) break;
    size_t end = expr.find_first_of(" \t", begin);
    if (end == std::string_view::npos) end = expr.size();
    fields.push_back(expr.substr(begin, end - begin));
    pos = end;
  }
  if (fields.size() != 5) {
    return Bad("expected 5 fields (minute hour day-of-month month day-of-week), got " +
               std::to_string(fields.size()));
  }
  static const Field kMinute{"minute", 0, 59};
  static const Field kHour{"hour", 0, 23};
  static const Field kDom{"day-of-month", 1, 31};
  static const Field kMonth{"month", 1, 12, kMonthNames, 12, "month name (jan-dec)"};
  static const Field kDow{"day-of-week", 0, 7, kDayNames, 7, "day name (sun-sat)"};
  CronSchedule cron;
  cron.text_ = std::string(trimmed);
  std::bitset<8> weekdays;
  Status s = ParseField(kMinute, fields[0], &cron.minutes_);
  if (s.ok()) s = ParseField(kHour, fields[1], &cron.hours_);
  if (s.ok()) s = ParseField(kDom, fields[2], &cron.days_);
  if (s.ok()) s = ParseField(kMonth, fields[3], &cron.months_);
  if (s.ok()) s = ParseField(kDow, fields[4], &weekdays);
  if (!s.ok()) return s;
  for (size_t d = 0; d < 7; ++d) cron.weekdays_[d] = weekdays[d];
  if (weekdays[7]) cron.weekdays_[0] = true;  // 7 is Sunday too
  cron.days_star_ = fields[2].starts_with('*');
  cron.weekdays_star_ = fields[4].starts_with('*');
  // With the day of week unrestricted, a day must exist in a month given
  // (February counts 29 days: it has them in leap years).
  if (cron.weekdays_star_) {
    bool possible = false;
    int longest = 0;
    for (int m = 1; m <= 12; ++m) {
      if (!cron.months_[m]) continue;
      int days = DaysInMonth(2000, m);
      longest = std::max(longest, days);
      for (int d = 1; d <= days; ++d) possible = possible || cron.days_[d];
    }
    if (!possible) {
      return Bad("day-of-month " + std::string(fields[2]) +
                 " never occurs in the months given (they have at most " + std::to_string(longest) +
                 " days), so it would never fire");
    }
  }
  return cron;
}

bool CronSchedule::DayMatches(int year, int month, int day) const {
  int64_t days = DaysFromCivil(year, month, day);
  int weekday = static_cast<int>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday (4)
  bool dom = days_[day];
  bool dow = weekdays_[weekday];
  if (days_star_ || weekdays_star_) return dom && dow;
  return dom || dow;
}

int64_t CronSchedule::Next(int64_t after) const {
  int64_t t = after + 1;
  t = (t % 60 == 0) ? t : t + (60 - ((t % 60) + 60) % 60);
  // Parse refused expressions that never fire; any other fires within 8
  // years (29 February can be 8 years apart), so this bound is never hit.
  const int64_t limit = t + 10 * 366 * kDay;
  while (t < limit) {
    int64_t days = t >= 0 ? t / kDay : (t - kDay + 1) / kDay;
    int64_t secs = t - days * kDay;
    int year, month, day;
    CivilFromDays(days, &year, &month, &day);
    if (!months_[month]) {
      int ny = month == 12 ? year + 1 : year;
      int nm = month == 12 ? 1 : month + 1;
      t = DaysFromCivil(ny, nm, 1) * kDay;
      continue;
    }
    if (!DayMatches(year, month, day)) {
      t = (days + 1) * kDay;
      continue;
    }
    int hour = static_cast<int>(secs / 3600);
    if (!hours_[hour]) {
      t = days * kDay + (hour + 1) * 3600;
      continue;
    }
    int minute = static_cast<int>((secs % 3600) / 60);
    if (!minutes_[minute]) {
      t += 60;
      continue;
    }
    return t;
  }
  return std::numeric_limits<int64_t>::max();
}

Result<ScheduleRule> ScheduleRule::Cron(const std::string& text) {
  auto cron = CronSchedule::Parse(text);
  if (!cron.ok()) return cron.status();
  return ScheduleRule(std::move(cron).value(), 0);
}

Result<ScheduleRule> ScheduleRule::Every(int64_t seconds) {
  if (seconds < 1) {
    return Bad("every must be a whole number of seconds of at least 1, got " +
               std::to_string(seconds));
  }
  return ScheduleRule(CronSchedule(), seconds);
}

int64_t ScheduleRule::Next(int64_t after) const {
  if (every_ == 0) return cron_.Next(after);
  int64_t k = after >= 0 ? after / every_ : (after - every_ + 1) / every_;
  return (k + 1) * every_;
}

std::string ScheduleRule::Describe() const {
  return every_ == 0 ? "cron " + cron_.text() : "every " + std::to_string(every_) + "s";
}

}  // namespace keel
