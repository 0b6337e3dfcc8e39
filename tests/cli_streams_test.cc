// keel's standard streams through the real binary. stderr is only for people:
// a reader that goes away (SIGPIPE, EPIPE) or a failing device never stops a
// run. stdout is the command's result: when it cannot be written (a full
// device), the command exits 5 with "keel: write error: ..." on stderr, for
// every command that prints; a closed stdout pipe exits 5 without a message.

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"
#include "tests/support/subprocess.h"

extern char** environ;

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 180;
constexpr int kExitOutput = 5;

// 16 nodes that each write 64 KiB of keel.log lines and print() lines: far
// more than a pipe holds.
const char kChatty[] = R"lua(local keel = require "keel"
local nodes = {}
for i = 1, 16 do
  nodes[#nodes + 1] = keel.fn ("n" .. i) { run = function()
    for j = 1, 400 do
      keel.log("line", j, string.rep("x", 80))
      print("print", j, string.rep("y", 60))
    end
    return i
  end }
end
return keel.workflow "chatty" (nodes)
)lua";

// A child whose stdout and stderr are file descriptors the test chose.
// Waits are bounded; the destructor kills and reaps a child still running.
class Child {
 public:
  Child(const std::vector<std::string>& args, int out_fd, int err_fd, const std::string& cwd) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
    posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
    std::vector<std::string> argv_strings{KEEL_BIN};
    argv_strings.insert(argv_strings.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& s : argv_strings) argv.push_back(s.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string(*e).starts_with("KEEL_DB=")) continue;
      env_strings.emplace_back(*e);
    }
    std::vector<char*> env;
    for (auto& s : env_strings) env.push_back(s.data());
    env.push_back(nullptr);
    int rc = posix_spawn(&pid_, KEEL_BIN, &actions, nullptr, argv.data(), env.data());
    posix_spawn_file_actions_destroy(&actions);
    REQUIRE(rc == 0);
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // The wait status, or -1 when `timeout` passed (the child is then killed).
  int Wait(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return -1;
  }

 private:
  pid_t pid_ = -1;
};

std::string DescribeStatus(int status) {
  if (status == -1) return "timed out";
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exit " + std::to_string(WEXITSTATUS(status));
}

// The recorded status of the only run in `db` and the kind and data of its
// last event.
struct Recorded {
  std::string status;
  std::string last_kind;
  std::string last_data;
};

Recorded OnlyRun(const std::string& db) {
  SqliteDb sql(db, /*create=*/false);
  auto runs = sql.Query("SELECT id, status FROM runs");
  REQUIRE(runs.size() == 1);
  auto last = sql.Query(
      "SELECT kind, data_json FROM events WHERE run_id = ?1 ORDER BY seq DESC "
      "LIMIT 1",
      {runs[0][0]});
  REQUIRE(last.size() == 1);
  return {runs[0][1], last[0][0], last[0][1]};
}

TEST_CASE("a stderr reader that goes away does not stop a run" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("chatty.lua", kChatty);
  int out_fd = open(box.Path("out.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  REQUIRE(out_fd >= 0);
  int pipe_fds[2];
  REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
  Child child({"run", wf, "--db", box.db()}, out_fd, pipe_fds[1], box.dir());
  close(out_fd);
  close(pipe_fds[1]);
  // Read a little, then go away as `| head -c 1000` would.
  char buf[1000];
  size_t got = 0;
  while (got < sizeof buf) {
    ssize_t n = read(pipe_fds[0], buf + got, sizeof buf - got);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(pipe_fds[0]);
  CHECK(got == sizeof buf);

  int status = child.Wait(std::chrono::seconds(120));
  INFO(DescribeStatus(status));
  REQUIRE(status != -1);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  Recorded run = OnlyRun(box.db());
  CHECK(run.status == "succeeded");
  CHECK(run.last_kind == "run_finished");
  CHECK(ReadFile(box.Path("out.txt")).value_or("").find(" succeeded in ") != std::string::npos);
}

TEST_CASE("stderr on a full device does not stop a run" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("chatty.lua", kChatty);
  int out_fd = open(box.Path("out.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int full_fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
  REQUIRE(out_fd >= 0);
  REQUIRE(full_fd >= 0);
  Child child({"run", wf, "--db", box.db(), "--json"}, out_fd, full_fd, box.dir());
  close(out_fd);
  close(full_fd);
  int status = child.Wait(std::chrono::seconds(120));
  INFO(DescribeStatus(status));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(OnlyRun(box.db()).status == "succeeded");
  Json out = Json::Parse(ReadFile(box.Path("out.txt")).value_or(""));
  CHECK(out["status"].Str() == "succeeded");
}

// `keel <args>` with stdout on /dev/full (through a shell redirection).
ExitInfo KeelToFull(const Sandbox& box, const std::vector<std::string>& args) {
  SpawnOptions options;
  options.cwd = box.dir();
  options.args = {"-c", "exec \"$0\" \"$@\" > /dev/full", KEEL_BIN};
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.env = {{"KEEL_DB", std::nullopt}};
  return RunProcess("/bin/sh", options, std::chrono::seconds(60));
}

TEST_CASE("every command that prints fails with a message when stdout is full" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("wf.lua", R"lua(local keel = require "keel"
return keel.workflow "w" {
  keel.fn "a" { run = function() return string.rep("z", 100) end },
  keel.fn "b" { after = { "a" }, run = function(ctx) return #ctx.deps.a end },
}
)lua");
  ExitInfo first = box.KeelDb({"run", wf, "--json"});
  INFO(first.Describe());
  REQUIRE(first.exit_code == 0);
  std::string id = Json::Parse(first.out)["run_id"].Str();
  REQUIRE(!id.empty());
  // A breaker for `keel breakers` to list.
  std::string failing = box.Write("failing.lua", R"lua(local keel = require "keel"
return keel.workflow "f" {
  keel.fn "x" { circuit = true, run = function() error("down") end },
}
)lua");
  REQUIRE(box.KeelDb({"run", failing}).exit_code == 1);

  const std::vector<std::vector<std::string>> commands = {
      {"run", wf, "--db", box.db()},
      {"run", wf, "--db", box.db(), "--json"},
      {"resume", id, "--db", box.db(), "--json"},
      {"runs", "--db", box.db()},
      {"runs", "--db", box.db(), "--json"},
      {"show", id, "--db", box.db()},
      {"show", id, "--db", box.db(), "--json"},
      {"show", id, "--db", box.db(), "--events"},
      {"graph", wf},
      {"graph", id, "--db", box.db(), "--format", "mermaid"},
      {"validate", wf},
      {"breakers", "--db", box.db()},
      {"breakers", "--db", box.db(), "--json"},
      {"gc", "--older-than", "1d", "--db", box.db()},
      {"--version"},
      {"--help"},
      {"run", "--help"},
  };
  for (const auto& args : commands) {
    std::string command;
    for (const std::string& arg : args) command += arg + " ";
    CAPTURE(command);
    ExitInfo r = KeelToFull(box, args);
    INFO(r.Describe());
    CHECK(r.exit_code == kExitOutput);
    CHECK(r.err.find("keel: write error: No space left on device\n") != std::string::npos);
  }
  // The runs made with stdout full were recorded all the same.
  Json runs = box.Runs();
  CHECK(runs.Size() == 4);
  int succeeded = 0;
  for (size_t i = 0; i < runs.Size(); ++i) succeeded += runs[i]["status"].Str() == "succeeded";
  CHECK(succeeded == 3);
}

TEST_CASE("a closed stdout pipe ends the command with exit 5 and no message" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("chatty.lua", kChatty);
  int err_fd = open(box.Path("err.txt").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int pipe_fds[2];
  REQUIRE(pipe2(pipe_fds, O_CLOEXEC) == 0);
  close(pipe_fds[0]);  // nobody will read
  Child child({"run", wf, "--db", box.db(), "--json"}, pipe_fds[1], err_fd, box.dir());
  close(pipe_fds[1]);
  close(err_fd);
  int status = child.Wait(std::chrono::seconds(120));
  INFO(DescribeStatus(status));
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == kExitOutput);
  CHECK(OnlyRun(box.db()).status == "succeeded");
  CHECK(ReadFile(box.Path("err.txt")).value_or("").find("write error") == std::string::npos);
}

}  // namespace
}  // namespace keel::testing
