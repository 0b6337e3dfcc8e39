// `cmake --install` (what `make install` runs) into a temporary prefix puts
// keel and keel-mock-llm in PREFIX/bin, and both run from there.
#include <doctest/doctest.h>

#include <filesystem>

#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {

TEST_CASE("cmake --install puts keel and keel-mock-llm in PREFIX/bin" * doctest::timeout(120)) {
  TempDir prefix;
  ExitInfo install = RunProcess(CMAKE_COMMAND, {.args = {"--install", KEEL_BUILD_DIR, "--prefix", prefix.path()}, .cwd = "", .env = {}},
                                std::chrono::seconds(100));
  REQUIRE_MESSAGE(install.exit_code == 0, install.Describe());

  std::string keel = prefix.Path("bin/keel");
  std::string mock = prefix.Path("bin/keel-mock-llm");
  REQUIRE(std::filesystem::exists(keel));
  REQUIRE(std::filesystem::exists(mock));

  // Run from elsewhere, found through PATH as a user would.
  TempDir elsewhere;
  std::string path = prefix.Path("bin") + ":/usr/bin:/bin";
  ExitInfo version = RunProcess("/usr/bin/env", {.args = {"keel", "--version"},
                                                 .cwd = elsewhere.path(),
                                                 .env = {{"PATH", path}}},
                                std::chrono::seconds(30));
  CHECK_MESSAGE(version.exit_code == 0, version.Describe());
  CHECK(version.out.find("keel ") != std::string::npos);

  ExitInfo help = RunProcess("/usr/bin/env", {.args = {"keel-mock-llm", "--help"},
                                              .cwd = elsewhere.path(),
                                              .env = {{"PATH", path}}},
                             std::chrono::seconds(30));
  CHECK_MESSAGE(help.exit_code == 0, help.Describe());
  CHECK(help.out.find("--port") != std::string::npos);
}

}  // namespace keel::testing
