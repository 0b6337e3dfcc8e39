// `make demo` builds only what the demo runs (the keel binary), not every
// test and benchmark: checked on `make -n demo`, which prints the commands
// without running them.
#include <doctest/doctest.h>

#include <regex>
#include <sstream>
#include <string>

#include "tests/support/subprocess.h"

namespace keel::testing {
namespace {

TEST_CASE("make demo builds the keel target only" * doctest::timeout(60)) {
  SpawnOptions options;
  options.args = {"-n", "-C", KEEL_SOURCE_DIR, "demo"};
  Subprocess make("/usr/bin/make", options);
  ExitInfo r = make.Wait(std::chrono::seconds(50));
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  int builds = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("cmake --build") == std::string::npos) continue;
    ++builds;
    CHECK_MESSAGE(std::regex_search(line, std::regex(R"(--target keel(\s|$))")), line);
  }
  CHECK(builds == 1);
  CHECK(r.out.find("keel run etl.lua") != std::string::npos);
}

}  // namespace
}  // namespace keel::testing
