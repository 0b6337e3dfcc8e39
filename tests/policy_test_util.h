#pragma once
// Helpers shared by the integration tests of the policy stack
// (cli_policy_test.cc, cli_join_test.cc). Test-thread only.

#include <doctest/doctest.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {

inline constexpr int kTimeoutS = 60;
// Bounds a run that must stop on its own: far above what any of them takes,
// far below what the work they stop would take.
inline constexpr auto kPrompt = std::chrono::seconds(20);

// Runs `wf` with --json, bounded by kPrompt; checks that it stopped by itself
// with `expected_exit`, and returns stdout parsed.
inline Json RunJson(const Sandbox& box, const std::string& wf, int expected_exit,
             const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args{"run", wf, "--json"};
  args.insert(args.end(), extra.begin(), extra.end());
  ExitInfo r = box.KeelDb(args, kPrompt);
  INFO(r.Describe());
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == expected_exit);
  return Json::Parse(r.out);
}

// The events of `show` (keel show --json --events) of `kind`, for `node`
// when it is not empty.
inline std::vector<Json> Events(const Json& show, const std::string& kind, const std::string& node = "") {
  std::vector<Json> found;
  for (size_t i = 0; i < show["events"].Size(); ++i) {
    Json e = show["events"][i];
    if (e["kind"].Str() == kind && (node.empty() || e["node"].Str() == node)) found.push_back(e);
  }
  return found;
}

// Seconds since the epoch of an ISO 8601 UTC time such as 2026-11-23T19:23:01.719Z.
inline double IsoSeconds(const std::string& iso) {
  std::tm tm{};
  double seconds = 0;
  REQUIRE(std::sscanf(iso.c_str(), "%d-%d-%dT%d:%d:%lfZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                      &tm.tm_hour, &tm.tm_min, &seconds) == 6);
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm)) + seconds;
}

// Lines of `text`, in order.
inline std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// CPU seconds (user + system) of this process's children reaped so far.
inline double ChildCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_CHILDREN, &usage);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace keel::testing
