#pragma once
// Reading one breaker from `keel breakers --json`, for CLI tests that check
// what a run did to a breaker. Call from the test's thread.

#include <doctest/doctest.h>

#include <string>

#include "tests/support/json.h"
#include "tests/support/sandbox.h"

namespace keel::testing {

// The breaker `key` as `keel breakers --json` shows it; null when absent.
inline Json ListedBreaker(const Sandbox& box, const std::string& key) {
  ExitInfo r = box.KeelDb({"breakers", "--json"});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  Json list = Json::Parse(r.out);
  for (size_t i = 0; i < list.Size(); ++i) {
    if (list[i]["key"].Str() == key) return list[i];
  }
  return Json::Null();
}

}  // namespace keel::testing
