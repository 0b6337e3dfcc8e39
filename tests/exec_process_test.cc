// ProcessLoop (nodes/child_process.h) and what an exec node makes of its
// results (nodes/exec_result.h): exit codes, output modes, the stdout cap,
// stderr's tail, programs that cannot start, big stdin with big stdout, and
// timeouts and cancels that kill the whole process group. Deadlines and
// kill graces run on a FakeClock; the programs are real.

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/fake_clock.h"
#include "nodes/child_process.h"
#include "nodes/exec_result.h"
#include "tests/support/temp_dir.h"

namespace keel {
namespace {

using namespace std::chrono_literals;
constexpr int kTimeoutS = 60;

// Runs `request` to the end; fails the test when it takes over 20 s.
ProcessResult RunToEnd(ProcessLoop& loop, ProcessRequest request) {
  auto promise = std::make_shared<std::promise<ProcessResult>>();
  auto future = promise->get_future();
  loop.Start(std::move(request), [promise](ProcessResult r) { promise->set_value(std::move(r)); });
  REQUIRE(future.wait_for(20s) == std::future_status::ready);
  return future.get();
}

ProcessRequest Cmd(std::vector<std::string> argv) {
  ProcessRequest request;
  request.argv = std::move(argv);
  return request;
}

ProcessRequest Sh(const std::string& script) {
  ProcessRequest request;
  request.argv = {"/bin/sh", "-c", script};
  return request;
}

// Dead, or a zombie nobody reaped yet (its parent, init in a container, may be slow).
bool Gone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  size_t close = text.rfind(')');
  return close == std::string::npos || text.substr(close + 2, 1) == "Z";
}

bool EventuallyGone(pid_t pid) {
  for (int i = 0; i < 200; ++i) {
    if (Gone(pid)) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

// Waits (bounded) for `path` to hold a line and returns it as a pid.
pid_t ReadPid(const std::string& path) {
  for (int i = 0; i < 2000; ++i) {
    std::ifstream in(path);
    pid_t pid = 0;
    if (in >> pid && pid > 0) return pid;
    std::this_thread::sleep_for(5ms);
  }
  return 0;
}

// Waits (bounded) until `clock` has at least `n` timers pending: the loop
// arms deadlines on its own thread.
void WaitForTimers(FakeClock& clock, size_t n) {
  for (int i = 0; i < 2000 && clock.pending() < n; ++i) std::this_thread::sleep_for(1ms);
  REQUIRE(clock.pending() >= n);
}

void CheckNoChildrenLeft() {
  int status;
  CHECK(waitpid(-1, &status, WNOHANG) == -1);
  CHECK(errno == ECHILD);
}

TEST_CASE("exec: stdout, exit codes and their kinds" * doctest::timeout(kTimeoutS)) {
  FakeClock clock;
  ProcessLoop loop(&clock);
  ProcessResult ok = RunToEnd(loop, Cmd({"printf", "hello"}));
  CHECK(ok.status.ok());
  CHECK(ok.exit_code == 0);
  CHECK(ok.stdout_data == "hello");
  CHECK(ok.pid > 0);
  CHECK(ExecStatus(ok, {}, "printf").ok());

  ProcessResult three = RunToEnd(loop, Sh("echo broken >&2; exit 3"));
  CHECK(three.status.ok());
  CHECK(three.exit_code == 3);
  Status unmapped = ExecStatus(three, {}, "sh");
  CHECK(unmapped.kind() == ErrorKind::kTransient);
  CHECK(unmapped.message() == "sh: exited with code 3; stderr: broken");
  Status mapped =
      ExecStatus(three, {{3, ErrorKind::kRateLimited}, {2, ErrorKind::kPermanent}}, "sh");
  CHECK(mapped.kind() == ErrorKind::kRateLimited);

  ProcessResult segv = RunToEnd(loop, Sh("kill -SEGV $$"));
  CHECK(segv.signal == SIGSEGV);
  Status killed = ExecStatus(segv, {}, "sh");
  CHECK(killed.kind() == ErrorKind::kTransient);
  CHECK(killed.message().find("killed by SIGSEGV") != std::string::npos);

  ProcessResult env = RunToEnd(loop, [] {
    ProcessRequest r = Sh("printf '%s' \"$GREETING\"; pwd >&2");
    r.env = {{"GREETING", "hi there"}};
    r.cwd = "/tmp";
    return r;
  }());
  CHECK(env.stdout_data == "hi there");
  CHECK(env.stderr_data == "/tmp\n");
  CheckNoChildrenLeft();
}

TEST_CASE("exec: output modes" * doctest::timeout(kTimeoutS)) {
  CHECK(*ExecOutputJson(ExecOutput::kText, "a \"b\"\n", "x") == "\"a \\\"b\\\"\\n\"");
  CHECK(*ExecOutputJson(ExecOutput::kLines, "one\ntwo\r\n\nthree", "x") ==
        "[\"one\",\"two\",\"\",\"three\"]");
  CHECK(*ExecOutputJson(ExecOutput::kLines, "one\n", "x") == "[\"one\"]");
  CHECK(*ExecOutputJson(ExecOutput::kLines, "", "x") == "[]");
  CHECK(*ExecOutputJson(ExecOutput::kJson, " {\"a\": [1, 2.5]}\n", "x") == "{\"a\":[1,2.5]}");
  CHECK(*ExecOutputJson(ExecOutput::kText, "bad \xff byte", "x") == "\"bad \xEF\xBF\xBD byte\"");

  auto garbage =
      ExecOutputJson(ExecOutput::kJson, "Traceback (most recent call last):", "train.py");
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.status().kind() == ErrorKind::kPermanent);
  CHECK(garbage.status().message().find("train.py: stdout is not JSON") == 0);
  CHECK(garbage.status().message().find("starts with \"Traceback (most recent") !=
        std::string::npos);
  auto empty = ExecOutputJson(ExecOutput::kJson, "", "x");
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.status().message().find("it starts empty") != std::string::npos);
}

TEST_CASE("exec: stderr's tail goes to the message, the last 2 KiB of it" *
          doctest::timeout(kTimeoutS)) {
  FakeClock clock;
  ProcessLoop loop(&clock);
  // 200 KB of stderr, then a last line, then exit 1.
  ProcessResult r = RunToEnd(
      loop, Sh("i=0; while [ $i -lt 2000 ]; do printf '%0100d\\n' $i >&2; i=$((i+1)); done; "
               "echo the real problem >&2; exit 1"));
  CHECK(r.exit_code == 1);
  CHECK(r.stderr_truncated);
  CHECK(r.stderr_data.size() <= kStderrKept);
  Status status = ExecStatus(r, {}, "sh");
  CHECK(status.message().find("the real problem") != std::string::npos);
  CHECK(status.message().find("stderr (last 2048 bytes): ...") != std::string::npos);
  CHECK(status.message().size() < 2048 + 200);
}

TEST_CASE("exec: stdout over the cap is permanent and the program is stopped" *
          doctest::timeout(kTimeoutS)) {
  FakeClock clock;
  ProcessLoop loop(&clock);
  ProcessRequest request = Cmd({"cat", "/dev/zero"});
  request.max_stdout = 1 << 20;
  ProcessResult r = RunToEnd(loop, request);
  CHECK(r.status.kind() == ErrorKind::kPermanent);
  CHECK(r.status.message().find("stdout is over the limit of 1 MiB") != std::string::npos);
  CHECK(r.stdout_data.size() == (1u << 20));
  CheckNoChildrenLeft();
}

TEST_CASE("exec: a missing program, a file that is not executable and a bad cwd are permanent" *
          doctest::timeout(kTimeoutS)) {
  FakeClock clock;
  ProcessLoop loop(&clock);
  testing::TempDir dir;
  std::string plain = dir.Path("plain.txt");
  std::ofstream(plain) << "not a program\n";

  ProcessResult missing = RunToEnd(loop, Cmd({dir.Path("nope/train.py")}));
  CHECK(missing.status.kind() == ErrorKind::kPermanent);
  CHECK(missing.status.message().find("program not found: " + dir.Path("nope/train.py")) == 0);
  CHECK(missing.pid == 0);

  ProcessResult unknown = RunToEnd(loop, Cmd({"keel-no-such-program"}));
  CHECK(unknown.status.kind() == ErrorKind::kPermanent);
  CHECK(unknown.status.message().find("program not found: keel-no-such-program (not in PATH=") ==
        0);

  ProcessResult not_executable = RunToEnd(loop, Cmd({plain}));
  CHECK(not_executable.status.kind() == ErrorKind::kPermanent);
  CHECK(not_executable.status.message() == "program " + plain + " is not executable");

  ProcessRequest bad_cwd = Cmd({"true"});
  bad_cwd.cwd = dir.Path("no-such-dir");
  ProcessResult cwd = RunToEnd(loop, bad_cwd);
  CHECK(cwd.status.kind() == ErrorKind::kPermanent);
  CHECK(cwd.status.message() == "cwd " + dir.Path("no-such-dir") + ": No such file or directory");
  CHECK(ExecStatus(cwd, {}, "true").message() == cwd.status.message());

  // A relative program is looked for from the cwd.
  std::string script = dir.Path("hello.sh");
  std::ofstream(script) << "#!/bin/sh\necho from script\n";
  chmod(script.c_str(), 0755);
  ProcessRequest relative = Cmd({"./hello.sh"});
  relative.cwd = dir.path();
  ProcessResult ran = RunToEnd(loop, relative);
  CHECK(ran.status.ok());
  CHECK(ran.stdout_data == "from script\n");
}

TEST_CASE("exec: big stdin and big stdout at once do not deadlock" * doctest::timeout(kTimeoutS)) {
  FakeClock clock;
  ProcessLoop loop(&clock);
  ProcessRequest request = Cmd({"cat"});
  request.has_stdin = true;
  std::string input;
  for (int i = 0; input.size() < (8u << 20); ++i) input += std::to_string(i) + "\n";
  request.stdin_data = input;
  ProcessResult r = RunToEnd(loop, request);
  CHECK(r.status.ok());
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_data.size() == input.size());
  CHECK(r.stdout_data == input);

  // A program that does not read its stdin at all still ends normally.
  ProcessRequest deaf = Cmd({"true"});
  deaf.has_stdin = true;
  deaf.stdin_data = input;
  ProcessResult ignored = RunToEnd(loop, deaf);
  CHECK(ignored.status.ok());
  CHECK(ignored.exit_code == 0);

  // Without stdin the program reads /dev/null.
  ProcessResult nothing = RunToEnd(loop, Cmd({"wc", "-c"}));
  CHECK(nothing.stdout_data.find('0') != std::string::npos);
}

TEST_CASE("exec: a cancel kills the whole process group; no zombies stay" *
          doctest::timeout(kTimeoutS)) {
  FakeClock clock;
  ProcessLoop loop(&clock);
  testing::TempDir dir;
  std::string pids = dir.Path("pids");
  CancelToken cancel;
  ProcessRequest request = Sh("sleep 100 & echo $! > " + pids + "; sleep 100 & wait");
  request.cancel = &cancel;
  auto promise = std::make_shared<std::promise<ProcessResult>>();
  auto future = promise->get_future();
  loop.Start(request, [promise](ProcessResult r) { promise->set_value(std::move(r)); });
  pid_t grandchild = ReadPid(pids);
  REQUIRE(grandchild > 0);
  CHECK(future.wait_for(50ms) == std::future_status::timeout);
  cancel.Cancel();
  REQUIRE(future.wait_for(20s) == std::future_status::ready);
  ProcessResult r = future.get();
  CHECK(r.status.kind() == ErrorKind::kCancelled);
  CHECK(ExecStatus(r, {}, "sh").message().find("sh: cancelled; killed") == 0);
  CHECK(EventuallyGone(grandchild));
  CHECK(Gone(r.pid));
  CheckNoChildrenLeft();
  CHECK(loop.running() == 0);
}

TEST_CASE("exec: a deadline sends SIGTERM, and SIGKILL after the grace to what ignores it" *
          doctest::timeout(kTimeoutS)) {
  FakeClock clock;
  ProcessLoop loop(&clock);
  testing::TempDir dir;
  std::string ready = dir.Path("ready");
  ProcessRequest request = Sh("trap '' TERM; echo $$ > " + ready + "; exec sleep 100");
  request.deadline = clock.Now() + 5;
  request.kill_grace = 3;
  auto promise = std::make_shared<std::promise<ProcessResult>>();
  auto future = promise->get_future();
  loop.Start(request, [promise](ProcessResult r) { promise->set_value(std::move(r)); });
  REQUIRE(ReadPid(ready) > 0);
  WaitForTimers(clock, 1);
  clock.Advance(5);         // the deadline: SIGTERM, which the program ignores
  WaitForTimers(clock, 1);  // the grace
  CHECK(future.wait_for(100ms) == std::future_status::timeout);
  clock.Advance(3);
  REQUIRE(future.wait_for(20s) == std::future_status::ready);
  ProcessResult r = future.get();
  CHECK(r.status.kind() == ErrorKind::kTimeout);
  CHECK(r.signal == SIGKILL);
  CHECK(ExecStatus(r, {}, "sh").kind() == ErrorKind::kTimeout);
  CheckNoChildrenLeft();
}

TEST_CASE("exec: what a finished program leaves running in its group is ended" *
          doctest::timeout(kTimeoutS)) {
  FakeClock clock;
  ProcessLoop loop(&clock);
  testing::TempDir dir;
  std::string pids = dir.Path("pids");
  ProcessResult r = RunToEnd(loop, Sh("sleep 100 & echo $! > " + pids + "; echo done"));
  CHECK(r.status.ok());
  CHECK(r.exit_code == 0);
  CHECK(r.stdout_data == "done\n");
  pid_t left = ReadPid(pids);
  REQUIRE(left > 0);
  CHECK(EventuallyGone(left));
  CheckNoChildrenLeft();
}

TEST_CASE("exec: destroying the loop kills and reaps what still runs" *
          doctest::timeout(kTimeoutS)) {
  FakeClock clock;
  auto result = std::make_shared<std::promise<ProcessResult>>();
  auto future = result->get_future();
  {
    ProcessLoop loop(&clock);
    loop.Start(Sh("sleep 100"), [result](ProcessResult r) { result->set_value(std::move(r)); });
    // The loop takes what was started before it stops: the program is
    // killed and reaped, not leaked.
  }
  REQUIRE(future.wait_for(1s) == std::future_status::ready);
  ProcessResult r = future.get();
  CHECK(r.status.kind() == ErrorKind::kCancelled);
  CheckNoChildrenLeft();
}

}  // namespace
}  // namespace keel
