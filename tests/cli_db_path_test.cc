// What --db (and $KEEL_DB) may name: a regular file, or nothing yet, once
// symbolic links are followed. A FIFO, a device, a socket or a directory is
// refused at once with exit 2 naming the path, by every command (a FIFO must
// not make one hang); the write-access check and the creation of a new
// database go by the link's target, not the link.

#include <doctest/doctest.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/subprocess.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 180;
// A refusal is immediate; a hang on a FIFO shows as a timeout.
constexpr auto kRefusalTimeout = std::chrono::seconds(20);

const char kFlow[] = R"lua(local keel = require "keel"
return keel.workflow "w" {
  keel.fn "a" { run = function() return 1 end },
}
)lua";

// Every command that opens the database, with `wf` as the workflow file.
std::vector<std::vector<std::string>> DbCommands(const std::string& wf) {
  return {{"run", wf},        {"resume", "abc"},     {"runs"},
          {"runs", "--json"}, {"show", "abc"},       {"graph", "abc"},
          {"breakers"},       {"breakers", "--all"}, {"gc", "--older-than", "1d"}};
}

// Runs every command against `db` (by --db, and once more by $KEEL_DB) and
// checks each is refused with exit 2 and a message naming `db` and `what`.
void ExpectRefusedEverywhere(const Sandbox& box, const std::string& db, const std::string& what) {
  KeelCli cli(KEEL_BIN, box.dir());
  for (const auto& command : DbCommands(box.Path("wf.lua"))) {
    std::vector<std::string> args = command;
    args.push_back("--db");
    args.push_back(db);
    ExitInfo r = cli.Run(args, kRefusalTimeout);
    CAPTURE(args);
    INFO(r.Describe());
    CHECK_FALSE(r.timed_out);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(db) != std::string::npos);
    CHECK(r.err.find(what) != std::string::npos);
  }
  SpawnOptions options;
  options.cwd = box.dir();
  options.args = {"runs"};
  options.env = {{"KEEL_DB", db}};
  ExitInfo r = RunProcess(KEEL_BIN, options, kRefusalTimeout);
  INFO(r.Describe());
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(db) != std::string::npos);
}

TEST_CASE("a FIFO as --db is refused at once, not opened" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("wf.lua", kFlow);
  std::string fifo = box.Path("db.fifo");
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  ExpectRefusedEverywhere(box, fifo, "named pipe (FIFO)");
  // Through a link too, naming both.
  std::string link = box.Path("link.db");
  std::filesystem::create_symlink(fifo, link);
  ExitInfo r = box.Keel({"runs", "--db", link}, kRefusalTimeout);
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(link + " (a link to " + fifo + ") is a named pipe") != std::string::npos);
}

TEST_CASE("/dev/null, a directory and a socket as --db are refused" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("wf.lua", kFlow);
  ExpectRefusedEverywhere(box, "/dev/null", "is a character device");
  std::filesystem::create_directory(box.Path("dir.db"));
  ExpectRefusedEverywhere(box, box.Path("dir.db"), "is a directory");

  std::string socket_path = box.Path("s.db");
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  REQUIRE(socket_path.size() < sizeof addr.sun_path);
  std::strcpy(addr.sun_path, socket_path.c_str());
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  ExitInfo r = box.Keel({"runs", "--db", socket_path}, kRefusalTimeout);
  close(fd);
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(socket_path + " is a socket") != std::string::npos);
}

TEST_CASE("a dangling --db link whose target directory exists creates the target" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("wf.lua", kFlow);
  std::filesystem::create_directory(box.Path("real"));
  std::string target = box.Path("real/keel.db");
  std::string link = box.Path("link.db");
  std::filesystem::create_symlink("real/keel.db", link);  // relative, as ln -s makes it

  ExitInfo r = box.Keel({"run", wf, "--db", link});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  CHECK(std::filesystem::is_symlink(link));
  CHECK(std::filesystem::is_regular_file(target));
  r = box.Keel({"runs", "--db", link});
  INFO(r.Describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("succeeded") != std::string::npos);

  // A link whose target directory is missing: a clear error, nothing created.
  std::string nowhere = box.Path("nowhere.db");
  std::filesystem::create_symlink(box.Path("missing/keel.db"), nowhere);
  r = box.Keel({"run", wf, "--db", nowhere});
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("no directory " + box.Path("missing")) != std::string::npos);
  // A link loop.
  std::filesystem::create_symlink("loop2.db", box.Path("loop1.db"));
  std::filesystem::create_symlink("loop1.db", box.Path("loop2.db"));
  r = box.Keel({"runs", "--db", box.Path("loop1.db")}, kRefusalTimeout);
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("too many levels of symbolic links") != std::string::npos);
}

TEST_CASE("a --db link into a read-only directory is checked against its target" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("wf.lua", kFlow);
  // A real database, made where it is writable, then copied into a tmpfs
  // that is remounted read-only: `ro/keel.db` is readable, not writable.
  REQUIRE(box.KeelDb({"run", wf}).exit_code == 0);
  std::filesystem::create_directory(box.Path("ro"));
  std::string ro_db = box.Path("ro/keel.db");
  std::string link = box.Path("link.db");
  std::filesystem::create_symlink(ro_db, link);
  // A writable tmpfs to hold the copy, then remounted read-only.
  if (geteuid() != 0 || mount("keel-test", box.Path("ro").c_str(), "tmpfs", 0, "size=4m") != 0) {
    MESSAGE("skipped: mounting a read-only tmpfs needs root (permission bits do not bind root)");
    return;
  }
  std::filesystem::copy_file(box.db(), ro_db);
  REQUIRE(mount(nullptr, box.Path("ro").c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) == 0);
  struct Unmount {
    std::string dir;
    ~Unmount() { umount2(dir.c_str(), MNT_DETACH); }
  } unmount{box.Path("ro")};

  // Writing commands are refused, naming the target's directory.
  for (const auto& command : std::vector<std::vector<std::string>>{
           {"run", wf}, {"gc", "--older-than", "1d"}, {"breakers", "--all"}}) {
    std::vector<std::string> args = command;
    args.push_back("--db");
    args.push_back(link);
    ExitInfo r = box.Keel(args, kRefusalTimeout);
    CAPTURE(args);
    INFO(r.Describe());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find("is read-only") != std::string::npos);
    CHECK(r.err.find("its directory " + box.Path("ro")) != std::string::npos);
  }
  // Reading commands open it read-only and work.
  ExitInfo r = box.Keel({"runs", "--db", link}, kRefusalTimeout);
  INFO(r.Describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("succeeded") != std::string::npos);

  // A dangling link into the read-only directory: cannot be created there.
  std::string new_link = box.Path("new.db");
  std::filesystem::create_symlink(box.Path("ro/new.db"), new_link);
  r = box.Keel({"run", wf, "--db", new_link}, kRefusalTimeout);
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("its directory " + box.Path("ro") + " is not writable") != std::string::npos);
}

}  // namespace
}  // namespace keel::testing
