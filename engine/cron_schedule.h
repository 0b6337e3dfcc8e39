#pragma once
// CronSchedule: a standard 5-field cron expression ("m h dom mon dow") and
// the next time it fires, in UTC. ScheduleRule adds `every = SECONDS`
// schedules, so that callers ask one thing for the next tick of either.
//
// Accepted: numbers, `*`, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n` (a to
// the field's maximum), comma lists, month names (jan..dec) and weekday names
// (sun..sat), 7 as Sunday, and the macros @hourly, @daily (@midnight),
// @weekly, @monthly, @yearly (@annually). When both day of month and day of
// week are restricted (neither starts with `*`), a day matches when either
// does (the usual cron rule); otherwise both must.
//
// Times are Unix seconds read as UTC: no time zone, no daylight saving.
//
// Immutable values; safe to share between threads.

#include <bitset>
#include <cstdint>
#include <string>

#include "engine/status.h"

namespace keel {

class CronSchedule {
 public:
  // Parses `text`. Fails (kPermanent) with a message naming the field and
  // why: "hour 24 out of range 0-23", "minute: 'x' is not a number",
  // "expected 5 fields (minute hour day-of-month month day-of-week), got 4".
  // An expression that can never fire ("0 0 30 feb *") is refused too.
  static Result<CronSchedule> Parse(const std::string& text);

  // The first time at or after `after` + 1 second, rounded up to a whole
  // minute, that matches: strictly after `after`. Unix seconds.
  int64_t Next(int64_t after) const;

  const std::string& text() const { return text_; }

 private:
  friend class ScheduleRule;
  CronSchedule() = default;
  bool DayMatches(int year, int month, int day) const;

  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;        // 1..31
  std::bitset<13> months_;      // 1..12
  std::bitset<7> weekdays_;     // 0 (Sunday)..6
  bool days_star_ = false;      // day of month began with '*'
  bool weekdays_star_ = false;  // day of week began with '*'
};

// When a schedule fires: a cron expression, or every `every` seconds at the
// multiples of `every` since the Unix epoch (so every process agrees on the
// ticks without having to remember when it started).
class ScheduleRule {
 public:
  static Result<ScheduleRule> Cron(const std::string& text);
  // Fails (kPermanent) unless `seconds` is at least 1.
  static Result<ScheduleRule> Every(int64_t seconds);

  // The first tick strictly after `after` (Unix seconds).
  int64_t Next(int64_t after) const;
  // "cron 0 3 * * *" or "every 3600s".
  std::string Describe() const;

  bool is_cron() const { return every_ == 0; }
  int64_t every() const { return every_; }
  const std::string& cron() const { return cron_.text(); }

 private:
  explicit ScheduleRule(CronSchedule cron, int64_t every) : cron_(std::move(cron)), every_(every) {}
  CronSchedule cron_;
  int64_t every_ = 0;
};

// Days since 1970-01-01 of a civil (proleptic Gregorian) date, and back.
int64_t DaysFromCivil(int year, int month, int day);
void CivilFromDays(int64_t days, int* year, int* month, int* day);

}  // namespace keel
