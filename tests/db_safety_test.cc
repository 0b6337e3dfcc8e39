// keel must never damage a file that is not its database: a text file,
// random bytes or another application's SQLite database given as --db is
// refused (exit 2, the file named) and left byte-identical. Also which
// database keel picks when --db is not given.

#include <doctest/doctest.h>

#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"
#include "tests/support/subprocess.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

std::string RandomBytes(size_t n) {
  std::mt19937 rng(77);
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
  return bytes;
}

// Builds another application's database at `path` with `sql`.
void MakeForeignDb(const std::string& path, const std::string& sql) {
  SqliteDb db(path, /*create=*/true);
  db.Exec(sql);
}

std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.insert(entry.path().filename().string());
  }
  return names;
}

TEST_CASE("a --db that is not a keel database is refused and left untouched" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  const std::string marker = box.Path("node-ran");
  const std::string wf = box.Write("wf.lua", R"lua(local keel = require "keel"
return keel.workflow "w" {
  keel.fn "a" { run = function()
    local f = assert(io.open(")lua" + marker + R"lua(", "w"))
    f:close()
    return 1
  end },
}
)lua");

  std::vector<std::string> files;
  files.push_back(box.Write("notes.txt", "these are my notes\nsecond line\n"));
  files.push_back(box.Write("noise.bin", RandomBytes(16384)));
  files.push_back(box.Path("accounts.sqlite"));
  MakeForeignDb(files.back(),
                "CREATE TABLE accounts(id INTEGER PRIMARY KEY, name TEXT);"
                "INSERT INTO accounts(name) VALUES ('ada'), ('grace');"
                "PRAGMA user_version = 7;");
  files.push_back(box.Path("lookalike.sqlite"));  // has tables named like keel's
  MakeForeignDb(files.back(),
                "CREATE TABLE runs(x TEXT); CREATE TABLE nodes(y TEXT);"
                "INSERT INTO runs VALUES ('not a run');");

  const std::vector<std::vector<std::string>> commands = {
      {"run", wf},      {"runs"},          {"runs", "--json"},
      {"show", "abc"},  {"resume", "abc"}, {"gc", "--older-than", "1d"},
      {"graph", "abc"},
  };
  for (const std::string& file : files) {
    CAPTURE(file);
    const std::string original = ReadFile(file).value();
    const std::set<std::string> listing = Listing(box.dir());
    std::vector<std::string> tables;
    if (file.ends_with(".sqlite")) tables = SqliteDb(file, false).TableNames();
    for (std::vector<std::string> args : commands) {
      CAPTURE(args[0]);
      args.push_back("--db");
      args.push_back(file);
      ExitInfo r = box.Keel(args);
      INFO(r.Describe());
      CHECK(r.exit_code == 2);
      CHECK(r.err.find("keel: ") != std::string::npos);
      CHECK(r.err.find(file) != std::string::npos);
      CHECK(r.out.empty());
      CHECK(ReadFile(file).value() == original);
      CHECK(Listing(box.dir()) == listing);  // no -wal, -shm or -journal left behind
      CHECK_FALSE(FileExists(marker));
    }
    if (!tables.empty()) CHECK(SqliteDb(file, false).TableNames() == tables);
  }
}

TEST_CASE("a --db that cannot be a file is refused" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  const std::string wf = box.Write("wf.lua", R"lua(local keel = require "keel"
return keel.workflow "w" { keel.fn "a" { run = function() return 1 end } }
)lua");
  for (const std::string& db : {box.dir(), box.Path("no/such/dir/keel.db")}) {
    CAPTURE(db);
    ExitInfo r = box.Keel({"run", wf, "--db", db});
    INFO(r.Describe());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(db) != std::string::npos);
  }
  CHECK_FALSE(FileExists(box.Path("no")));
}

TEST_CASE("without --db keel uses $KEEL_DB, else ./keel.db" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  const std::string wf = box.Write("wf.lua", R"lua(local keel = require "keel"
return keel.workflow "w" { keel.fn "a" { run = function() return 1 end } }
)lua");
  auto keel = [&](std::vector<std::string> args, std::optional<std::string> keel_db) {
    SpawnOptions options;
    options.args = std::move(args);
    options.cwd = box.dir();
    options.env.emplace_back("KEEL_DB", std::move(keel_db));
    return RunProcess(KEEL_BIN, options, std::chrono::seconds(60));
  };

  ExitInfo from_env = keel({"run", wf}, box.Path("env.db"));
  INFO(from_env.Describe());
  CHECK(from_env.exit_code == 0);
  CHECK(FileExists(box.Path("env.db")));
  CHECK_FALSE(FileExists(box.Path("keel.db")));

  ExitInfo from_cwd = keel({"run", wf}, std::nullopt);
  INFO(from_cwd.Describe());
  CHECK(from_cwd.exit_code == 0);
  CHECK(FileExists(box.Path("keel.db")));

  ExitInfo listed = keel({"runs", "--json"}, box.Path("env.db"));
  INFO(listed.Describe());
  REQUIRE(listed.exit_code == 0);
  Json runs = Json::Parse(listed.out);
  REQUIRE(runs.Size() == 1);
  CHECK(runs[0]["run_id"].Str() == RunIdFromStderr(from_env.err));

  ExitInfo flag_wins = keel({"runs", "--json", "--db", box.Path("keel.db")}, box.Path("env.db"));
  INFO(flag_wins.Describe());
  REQUIRE(flag_wins.exit_code == 0);
  Json cwd_runs = Json::Parse(flag_wins.out);
  REQUIRE(cwd_runs.Size() == 1);
  CHECK(cwd_runs[0]["run_id"].Str() == RunIdFromStderr(from_cwd.err));
}

}  // namespace
}  // namespace keel::testing
