// CronSchedule and ScheduleRule: parsing (every syntax and every error names
// its field), next ticks across month ends, leap years and the dom/dow rule,
// all in UTC.
#include "engine/cron_schedule.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

namespace keel {
namespace {

// Unix seconds of a UTC civil time.
int64_t Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

int64_t Next(const std::string& expr, int64_t after) {
  auto cron = CronSchedule::Parse(expr);
  REQUIRE_MESSAGE(cron.ok(), expr, ": ", cron.status().message());
  return cron->Next(after);
}

std::string Error(const std::string& expr) {
  auto cron = CronSchedule::Parse(expr);
  if (cron.ok()) return "(parsed)";
  return cron.status().message();
}

TEST_CASE("civil dates convert both ways") {
  CHECK(DaysFromCivil(1970, 1, 1) == 0);
  CHECK(DaysFromCivil(2000, 3, 1) == 11017);
  CHECK(Utc(2026, 12, 5, 0, 26, 47) == 1796430407);
  for (int64_t days : {int64_t{0}, int64_t{59}, int64_t{11016}, int64_t{20000}, int64_t{47541}}) {
    int y, m, d;
    CivilFromDays(days, &y, &m, &d);
    CHECK(DaysFromCivil(y, m, d) == days);
  }
}

TEST_CASE("every minute, and strictly after the given time") {
  CHECK(Next("* * * * *", Utc(2026, 1, 1, 10, 0, 0)) == Utc(2026, 1, 1, 10, 1));
  CHECK(Next("* * * * *", Utc(2026, 1, 1, 10, 0, 59)) == Utc(2026, 1, 1, 10, 1));
  CHECK(Next("* * * * *", Utc(2026, 1, 1, 10, 0, 1)) == Utc(2026, 1, 1, 10, 1));
  CHECK(Next("* * * * *", Utc(2026, 12, 31, 23, 59)) == Utc(2027, 1, 1, 0, 0));
}

TEST_CASE("fixed times, ranges, steps and lists") {
  int64_t t = Utc(2026, 3, 10, 12, 30);
  CHECK(Next("0 3 * * *", t) == Utc(2026, 3, 11, 3, 0));
  CHECK(Next("45 12 * * *", t) == Utc(2026, 3, 10, 12, 45));
  CHECK(Next("30 12 * * *", t) == Utc(2026, 3, 11, 12, 30));  // not the same instant
  CHECK(Next("*/15 * * * *", t) == Utc(2026, 3, 10, 12, 45));
  CHECK(Next("*/7 * * * *", Utc(2026, 3, 10, 12, 57)) == Utc(2026, 3, 10, 13, 0));
  CHECK(Next("10-20/5 * * * *", t) == Utc(2026, 3, 10, 13, 10));
  CHECK(Next("50/3 * * * *", t) == Utc(2026, 3, 10, 12, 50));
  CHECK(Next("5,35,50 * * * *", t) == Utc(2026, 3, 10, 12, 35));
  CHECK(Next("0 9-17/4 * * *", t) == Utc(2026, 3, 10, 13, 0));
  CHECK(Next("0 0 1,15 * *", t) == Utc(2026, 3, 15));
  CHECK(Next("0 0 * 6 *", t) == Utc(2026, 6, 1));
  CHECK(Next("0 0 1 1 *", t) == Utc(2027, 1, 1));
}

TEST_CASE("month ends and leap years") {
  CHECK(Next("0 0 31 * *", Utc(2026, 1, 31, 1)) == Utc(2026, 3, 31));
  CHECK(Next("0 0 31 * *", Utc(2026, 4, 1)) == Utc(2026, 5, 31));
  CHECK(Next("0 0 30 * *", Utc(2026, 1, 30, 12)) == Utc(2026, 3, 30));
  CHECK(Next("0 12 29 2 *", Utc(2026, 1, 1)) == Utc(2028, 2, 29, 12));
  CHECK(Next("0 12 29 2 *", Utc(2028, 2, 29, 12)) == Utc(2032, 2, 29, 12));
  // 2100 is not a leap year: eight years between two 29 Februaries.
  CHECK(Next("0 0 29 feb *", Utc(2096, 3, 1)) == Utc(2104, 2, 29));
  CHECK(Next("0 0 29 feb *", Utc(2096, 1, 1)) == Utc(2096, 2, 29));
  // 2000 is a leap year (divisible by 400).
  CHECK(Next("0 0 29 2 *", Utc(1999, 1, 1)) == Utc(2000, 2, 29));
  CHECK(Next("59 23 28-31 2 *", Utc(2027, 2, 28, 23, 59)) == Utc(2028, 2, 28, 23, 59));
  CHECK(Next("59 23 * * *", Utc(2028, 2, 28, 23, 59)) == Utc(2028, 2, 29, 23, 59));
}

TEST_CASE("names, 7 as Sunday and the day-of-week rules") {
  // 2026-12-05 is a Saturday.
  int64_t sat = Utc(2026, 12, 5, 8);
  CHECK(Next("0 9 * * mon", sat) == Utc(2026, 12, 7, 9));
  CHECK(Next("0 9 * * MON-fri", sat) == Utc(2026, 12, 7, 9));
  CHECK(Next("0 9 * * 0", sat) == Utc(2026, 12, 6, 9));
  CHECK(Next("0 9 * * 7", sat) == Utc(2026, 12, 6, 9));
  CHECK(Next("0 9 * * 5-7", sat) == Utc(2026, 12, 5, 9));
  CHECK(Next("0 9 * * sat,sun", Utc(2026, 12, 5, 10)) == Utc(2026, 12, 6, 9));
  CHECK(Next("0 0 1 jan-mar *", sat) == Utc(2027, 1, 1));
  CHECK(Next("0 0 * DEC *", Utc(2026, 11, 1)) == Utc(2026, 12, 1));
  // Both restricted: either matches (the 13th, or a Friday).
  CHECK(Next("0 0 13 * fri", sat) == Utc(2026, 12, 11));
  CHECK(Next("0 0 13 * fri", Utc(2026, 12, 11, 1)) == Utc(2026, 12, 13));
  // Day of month starting with '*': both must match (a Friday that is odd).
  CHECK(Next("0 0 */2 * fri", sat) == Utc(2026, 12, 11));
  CHECK(Next("0 0 */2 * 5", Utc(2026, 12, 11, 1)) == Utc(2026, 12, 25));
  // Day of week '*' with a restricted day of month: only those days.
  CHECK(Next("0 0 13 * *", sat) == Utc(2026, 12, 13));
}

TEST_CASE("macros") {
  int64_t t = Utc(2026, 12, 5, 8, 20);
  CHECK(Next("@hourly", t) == Utc(2026, 12, 5, 9));
  CHECK(Next("@daily", t) == Utc(2026, 12, 6));
  CHECK(Next("@midnight", t) == Utc(2026, 12, 6));
  CHECK(Next("@weekly", t) == Utc(2026, 12, 6));
  CHECK(Next("@monthly", t) == Utc(2027, 1, 1));
  CHECK(Next("@yearly", t) == Utc(2027, 1, 1));
  CHECK(Next("@annually", t) == Utc(2027, 1, 1));
  CHECK(Next("  @DAILY ", t) == Utc(2026, 12, 6));
}

TEST_CASE("errors name the field and why") {
  CHECK(Error("") == "expected 5 fields (minute hour day-of-month month day-of-week), got 0");
  CHECK(Error("* * * *") ==
        "expected 5 fields (minute hour day-of-month month day-of-week), got 4");
  CHECK(Error("* * * * * *") ==
        "expected 5 fields (minute hour day-of-month month day-of-week), got 6");
  CHECK(Error("60 * * * *") == "minute 60 out of range 0-59");
  CHECK(Error("0 24 * * *") == "hour 24 out of range 0-23");
  CHECK(Error("0 0 0 * *") == "day-of-month 0 out of range 1-31");
  CHECK(Error("0 0 32 * *") == "day-of-month 32 out of range 1-31");
  CHECK(Error("0 0 * 13 *") == "month 13 out of range 1-12");
  CHECK(Error("0 0 * 0 *") == "month 0 out of range 1-12");
  CHECK(Error("0 0 * * 8") == "day-of-week 8 out of range 0-7");
  CHECK(Error("x * * * *") == "minute: 'x' is not a number");
  CHECK(Error("1x * * * *") == "minute: '1x' is not a number");
  CHECK(Error("0 0 * foo *") == "month: 'foo' is neither a number nor a month name (jan-dec)");
  CHECK(Error("0 0 * * funday") ==
        "day-of-week: 'funday' is neither a number nor a day name (sun-sat)");
  CHECK(Error("0 mon * * *") == "hour: 'mon' is not a number");
  CHECK(Error("0 5-3 * * *") == "hour: range 5-3 runs backwards");
  CHECK(Error("*/0 * * * *") == "minute: step must be a whole number of at least 1, got '0'");
  CHECK(Error("*/ * * * *") == "minute: step must be a whole number of at least 1, got ''");
  CHECK(Error("1,,2 * * * *") == "minute: empty item in list '1,,2'");
  CHECK(Error("0 -1 * * *") == "hour: a value is missing");
  CHECK(Error("@daly") ==
        "unknown macro '@daly' (did you mean '@daily'?); use @hourly, @daily, @weekly, "
        "@monthly or @yearly");
  CHECK(Error("0 0 30 feb *") ==
        "day-of-month 30 never occurs in the months given (they have at most 29 days), so it "
        "would never fire");
  CHECK(Error("0 0 31 4,6,9,11 *") ==
        "day-of-month 31 never occurs in the months given (they have at most 30 days), so it "
        "would never fire");
  // With a day of week given, either may match: it fires.
  CHECK(Error("0 0 30 feb mon") == "(parsed)");
}

TEST_CASE("every: ticks at multiples of the period since the epoch") {
  auto rule = ScheduleRule::Every(60);
  REQUIRE(rule.ok());
  CHECK(rule->Next(0) == 60);
  CHECK(rule->Next(59) == 60);
  CHECK(rule->Next(60) == 120);
  CHECK(rule->Describe() == "every 60s");
  auto two = ScheduleRule::Every(2);
  REQUIRE(two.ok());
  CHECK(two->Next(1001) == 1002);
  CHECK(two->Next(1002) == 1004);
  CHECK(ScheduleRule::Every(0).status().message() ==
        "every must be a whole number of seconds of at least 1, got 0");
  CHECK(!ScheduleRule::Every(-5).ok());
  auto cron = ScheduleRule::Cron("0 3 * * *");
  REQUIRE(cron.ok());
  CHECK(cron->is_cron());
  CHECK(cron->Describe() == "cron 0 3 * * *");
  CHECK(cron->Next(Utc(2026, 1, 1, 4)) == Utc(2026, 1, 2, 3));
}

TEST_CASE("next ticks of many expressions are increasing and match") {
  const char* exprs[] = {"*/5 * * * *",     "0 */6 * * *", "15 10 1 * *",  "0 0 * * 1-5",
                         "0 12 1,15 */2 *", "0 0 29 2 *",  "30 2 31 * sun"};
  for (const char* expr : exprs) {
    auto cron = CronSchedule::Parse(expr);
    REQUIRE(cron.ok());
    int64_t t = Utc(2023, 11, 20, 7, 13, 5);
    for (int i = 0; i < 50; ++i) {
      int64_t next = cron->Next(t);
      CHECK(next > t);
      CHECK(next % 60 == 0);
      // Nothing between t and next fires: the tick just before next is <= t.
      CHECK(cron->Next(next - 60) == next);
      t = next;
    }
  }
}

}  // namespace
}  // namespace keel
