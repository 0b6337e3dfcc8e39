#include "tests/support/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace keel::testing {
namespace {

constexpr auto kPollInterval = std::chrono::milliseconds(2);

[[noreturn]] void Fail(const std::string& what, int err) {
  throw std::runtime_error(what + ": " + std::strerror(err));
}

// An unlinked, close-on-exec temporary file; the child gets a dup of it.
int OpenCaptureFile() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/keel-capture-XXXXXX";
  int fd = mkostemp(pattern.data(), O_CLOEXEC);
  if (fd < 0) Fail("mkostemp " + pattern, errno);
  unlink(pattern.c_str());
  return fd;
}

// The whole file behind `fd`, read with pread so the child's offset is untouched.
std::string ReadAll(int fd) {
  std::string out;
  char buf[65536];
  off_t offset = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof(buf), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

std::vector<std::string> Environment(const SpawnOptions& options) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) env.emplace_back(*e);
  for (const auto& [name, value] : options.env) {
    const std::string prefix = name + "=";
    std::erase_if(env, [&](const std::string& entry) { return entry.starts_with(prefix); });
    if (value) env.push_back(name + "=" + *value);
  }
  return env;
}

std::vector<char*> Pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

std::string ExitInfo::Describe() const {
  std::string how = timed_out ? "timed out (killed)"
                    : signal  ? "killed by signal " + std::to_string(signal)
                              : "exit " + std::to_string(exit_code);
  return how + "\n--- stdout ---\n" + out + "\n--- stderr ---\n" + err;
}

Subprocess::Subprocess(const std::string& program, const SpawnOptions& options) {
  out_fd_ = OpenCaptureFile();
  err_fd_ = OpenCaptureFile();

  std::vector<std::string> argv_strings{program};
  argv_strings.insert(argv_strings.end(), options.args.begin(), options.args.end());
  std::vector<std::string> env_strings = Environment(options);
  std::vector<char*> argv = Pointers(argv_strings);
  std::vector<char*> envp = Pointers(env_strings);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd_, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd_, 2);
  if (!options.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, options.cwd.c_str());
  int rc = posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    close(out_fd_);
    close(err_fd_);
    Fail("posix_spawn " + program, rc);
  }
}

Subprocess::~Subprocess() {
  if (!reaped_) Kill();
  close(out_fd_);
  close(err_fd_);
}

std::string Subprocess::Stdout() const { return ReadAll(out_fd_); }
std::string Subprocess::Stderr() const { return ReadAll(err_fd_); }

void Subprocess::Reaped(int wait_status) {
  reaped_ = true;
  wait_status_ = wait_status;
}

bool Subprocess::Exited() {
  if (reaped_) return true;
  int wait_status = 0;
  pid_t r = waitpid(pid_, &wait_status, WNOHANG);
  if (r == pid_) Reaped(wait_status);
  return reaped_;
}

bool Subprocess::WaitForStderr(const std::string& needle, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // Checked before Exited() so a line printed just before exiting counts.
    bool ended = Exited();
    if (Stderr().find(needle) != std::string::npos) return true;
    if (ended || std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(kPollInterval);
  }
}

ExitInfo Subprocess::Kill() {
  if (!reaped_) {
    kill(pid_, SIGKILL);
    int wait_status = 0;
    while (waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
    }
    Reaped(wait_status);
  }
  return Info();
}

ExitInfo Subprocess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!Exited()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      timed_out_ = true;
      return Kill();
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return Info();
}

ExitInfo Subprocess::Info() const {
  ExitInfo info;
  info.timed_out = timed_out_;
  if (WIFEXITED(wait_status_)) info.exit_code = WEXITSTATUS(wait_status_);
  if (WIFSIGNALED(wait_status_)) info.signal = WTERMSIG(wait_status_);
  info.out = Stdout();
  info.err = Stderr();
  return info;
}

ExitInfo RunProcess(const std::string& program, const SpawnOptions& options,
                    std::chrono::milliseconds timeout) {
  Subprocess child(program, options);
  return child.Wait(timeout);
}

}  // namespace keel::testing
