// `keel gc` through the binary: `--older-than 0s` deletes every finished
// run, and the database file shrinks afterwards, for a new database
// (created with incremental vacuum) and for one created without it (which
// the first gc converts).

#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;
constexpr int kRuns = 4;

// One sink with a 1 MB output, so each run adds a megabyte to the file.
const char kBulky[] = R"lua(local keel = require "keel"
return keel.workflow "bulky" {
  keel.fn "big" { run = function(ctx) return string.rep("x", 1000000) end },
}
)lua";

uintmax_t FileSize(const std::string& path) { return std::filesystem::file_size(path); }

void FillWithRuns(const Sandbox& box) {
  std::string wf = box.Write("bulky.lua", kBulky);
  for (int i = 0; i < kRuns; ++i) {
    ExitInfo r = box.KeelDb({"run", wf});
    INFO(r.Describe());
    REQUIRE(r.exit_code == 0);
  }
}

void CheckGcShrinks(const Sandbox& box) {
  uintmax_t before = FileSize(box.db());
  CHECK(before > kRuns * 1000000u);
  ExitInfo gc = box.KeelDb({"gc", "--older-than", "0s"});
  INFO(gc.Describe());
  CHECK(gc.exit_code == 0);
  CHECK(gc.out == "deleted " + std::to_string(kRuns) + " runs\n");
  CHECK(gc.err.find("database file") != std::string::npos);
  CHECK(box.Runs().Size() == 0);
  CAPTURE(before);
  CHECK(FileSize(box.db()) < 1000000u);
  // The database stays usable, and in incremental mode from now on.
  CHECK(SqliteDb(box.db(), false).Query("PRAGMA auto_vacuum")[0][0] == "2");
  ExitInfo again = box.KeelDb({"run", box.Path("bulky.lua")});
  INFO(again.Describe());
  CHECK(again.exit_code == 0);
}

TEST_CASE("gc --older-than 0s deletes every finished run and shrinks the file" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  FillWithRuns(box);
  CHECK(SqliteDb(box.db(), false).Query("PRAGMA auto_vacuum")[0][0] == "2");
  CheckGcShrinks(box);
}

TEST_CASE("gc shrinks a database created without incremental vacuum" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  FillWithRuns(box);
  // As an older keel created it.
  SqliteDb(box.db(), false).Exec("PRAGMA auto_vacuum = NONE; VACUUM");
  REQUIRE(SqliteDb(box.db(), false).Query("PRAGMA auto_vacuum")[0][0] == "0");
  CheckGcShrinks(box);
}

}  // namespace
}  // namespace keel::testing
