#include <doctest/doctest.h>

#include <atomic>
#include <vector>

#include "engine/fake_clock.h"

using keel::FakeClock;

TEST_CASE("fake clock fires timers in due order as time advances") {
  FakeClock clock(100.0);
  std::vector<int> fired;
  clock.After(2.0, [&] { fired.push_back(2); });
  clock.After(1.0, [&] { fired.push_back(1); });
  auto id3 = clock.After(3.0, [&] { fired.push_back(3); });
  clock.Advance(0.5);
  CHECK(fired.empty());
  CHECK(clock.Now() == doctest::Approx(100.5));
  clock.Advance(1.6);
  CHECK(fired == std::vector<int>{1, 2});
  CHECK(clock.Cancel(id3));
  CHECK_FALSE(clock.Cancel(id3));
  clock.Advance(10);
  CHECK(fired == std::vector<int>{1, 2});
  CHECK(clock.Now() == doctest::Approx(112.1));
}

TEST_CASE("a timer callback sees the clock at its due time and may schedule more") {
  FakeClock clock(0.0);
  std::vector<double> seen;
  clock.After(1.0, [&] {
    seen.push_back(clock.Now());
    clock.After(1.0, [&] { seen.push_back(clock.Now()); });
  });
  clock.Advance(5);
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == doctest::Approx(1.0));
  CHECK(seen[1] == doctest::Approx(2.0));
  CHECK(clock.pending() == 0);
}

TEST_CASE("RunNext jumps to the next timer") {
  FakeClock clock(0.0);
  int n = 0;
  clock.After(7.0, [&] { ++n; });
  CHECK(clock.RunNext());
  CHECK(n == 1);
  CHECK(clock.Now() == doctest::Approx(7.0));
  CHECK_FALSE(clock.RunNext());
}
