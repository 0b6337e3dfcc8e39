// SqliteStore::Exists, and opening one new database from several threads
// and processes at once: creators and read-only openers racing on a fresh
// path must each see either no database yet or a whole keel database, never
// a half-made one.

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite_test_util.h"

namespace keel {
namespace {

using testing::ScratchDir;

constexpr int kOpeners = 6;  // even ones create, odd ones only open

// What one opener saw.
enum Outcome { kOpened = 0, kNoDatabase = 1, kRefused = 2 };

// Opens `path` once, as `keel run` does when `create`, and as the read-only
// commands do otherwise: only when a keel database is there. A refusal is
// printed on stderr so that a failing run shows why.
Outcome OpenOnce(const std::string& path, bool create) {
  if (!create) {
    auto exists = SqliteStore::Exists(path, 10);
    if (!exists.ok()) {
      std::fprintf(stderr, "inspect: %s\n", exists.status().ToString().c_str());
      return kRefused;
    }
    if (!*exists) return kNoDatabase;
  }
  SqliteStoreOptions options;
  options.create_if_missing = create;
  auto store = SqliteStore::Open(path, options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return kRefused;
  }
  // A read that needs the schema: it must be complete.
  if (!(*store)->ListRuns(RunFilter{}).ok()) return kRefused;
  return kOpened;
}

TEST_CASE("Exists tells a keel database from none, and refuses others untouched") {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto missing = SqliteStore::Exists(path, 10);
  REQUIRE(missing.ok());
  CHECK_FALSE(*missing);
  CHECK_FALSE(testing::Exists(path));

  testing::WriteBytes(path, "");
  auto empty = SqliteStore::Exists(path, 10);
  REQUIRE(empty.ok());
  CHECK_FALSE(*empty);

  std::filesystem::remove(path);
  testing::OpenStore(path).reset();
  auto keel = SqliteStore::Exists(path, 10);
  REQUIRE(keel.ok());
  CHECK(*keel);

  const std::string other = dir.Path("other.db");
  testing::RawDb(other).Exec("CREATE TABLE runs (id TEXT)");
  const std::string before = testing::ReadBytes(other);
  auto foreign = SqliteStore::Exists(other, 10);
  REQUIRE_FALSE(foreign.ok());
  CHECK(foreign.status().message().find("another program's tables (runs)") != std::string::npos);
  CHECK(testing::ReadBytes(other) == before);
  CHECK_FALSE(testing::Exists(other + "-wal"));

  auto directory = SqliteStore::Exists(dir.Path(""), 10);
  CHECK_FALSE(directory.ok());
}

TEST_CASE("threads opening a new database at once never see it half made" * doctest::timeout(300)) {
  for (int round = 0; round < 150; ++round) {
    ScratchDir dir;
    const std::string path = dir.Path("keel.db");
    std::atomic<int> ready{0};
    std::vector<Outcome> outcomes(kOpeners);
    std::vector<std::thread> threads;
    for (int i = 0; i < kOpeners; ++i) {
      threads.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < kOpeners) std::this_thread::yield();
        outcomes[i] = OpenOnce(path, i % 2 == 0);
      });
    }
    for (auto& t : threads) t.join();
    CAPTURE(round);
    for (int i = 0; i < kOpeners; ++i) {
      CAPTURE(i);
      if (i % 2 == 0) {
        CHECK(outcomes[i] == kOpened);
      } else {
        CHECK((outcomes[i] == kOpened || outcomes[i] == kNoDatabase));
      }
    }
  }
}

TEST_CASE("processes opening a new database at once never see it half made" *
          doctest::timeout(300)) {
  for (int round = 0; round < 60; ++round) {
    ScratchDir dir;
    const std::string path = dir.Path("keel.db");
    int go[2];
    REQUIRE(pipe(go) == 0);
    std::vector<pid_t> children;
    for (int i = 0; i < kOpeners; ++i) {
      pid_t child = fork();
      REQUIRE(child >= 0);
      if (child == 0) {
        close(go[1]);
        char byte;
        if (read(go[0], &byte, 1) != 0) _exit(10);  // EOF: everyone starts
        _exit(OpenOnce(path, i % 2 == 0));
      }
      children.push_back(child);
    }
    close(go[0]);
    close(go[1]);
    CAPTURE(round);
    for (int i = 0; i < kOpeners; ++i) {
      int status = 0;
      REQUIRE(waitpid(children[i], &status, 0) == children[i]);
      REQUIRE(WIFEXITED(status));
      CAPTURE(i);
      const int outcome = WEXITSTATUS(status);
      if (i % 2 == 0) {
        CHECK(outcome == kOpened);
      } else {
        CHECK((outcome == kOpened || outcome == kNoDatabase));
      }
    }
  }
}

}  // namespace
}  // namespace keel
