#include "service/child_runs.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

extern char** environ;

namespace keel::service {
namespace {

int ExitCodeOf(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

// argv for posix_spawn: `program` then `args`, null-terminated. Points into
// the strings, which must outlive it.
std::vector<char*> Argv(const std::string& program, const std::vector<std::string>& args) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  return argv;
}

// Spawns `program` in a session of its own with stdin from /dev/null and
// stdout and stderr on `out_fd` and `err_fd`.
Result<pid_t> Spawn(const std::string& program, const std::vector<std::string>& args, int out_fd,
                    int err_fd) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_fd, 2);
  // Its own session: signals for the server's terminal or process group do
  // not reach it. The default signal mask and dispositions, whatever the
  // server's threads block.
  sigset_t none;
  sigemptyset(&none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> argv = Argv(program, args);
  pid_t pid = 0;
  int rc = posix_spawn(&pid, program.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    return Status::Error(ErrorKind::kPermanent,
                         "cannot start " + program + ": " + std::strerror(rc));
  }
  return pid;
}

}  // namespace

ChildRuns::ChildRuns(std::string keel_path, std::string db, int max_runs)
    : keel_path_(std::move(keel_path)), db_(std::move(db)), max_runs_(max_runs) {}

bool ChildRuns::Reserve() {
  MutexLock lock(&mu_);
  if (reserved_ >= max_runs_) return false;
  ++reserved_;
  return true;
}

void ChildRuns::Unreserve() {
  MutexLock lock(&mu_);
  if (reserved_ > 0) --reserved_;
}

int ChildRuns::Active() const {
  MutexLock lock(&mu_);
  return reserved_;
}

std::string ChildRuns::LogPath(const std::string& run_id) const {
  return db_ + "-logs/" + run_id + ".log";
}

Status ChildRuns::Start(const std::string& run_id, const std::vector<std::string>& args,
                        ExitFn on_exit) {
  std::string log = LogPath(run_id);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(log).parent_path(), ec);
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    Unreserve();
    return Status::Error(ErrorKind::kPermanent,
                         "cannot open the run log " + log + ": " + std::strerror(errno));
  }
  std::vector<std::string> argv = args;
  argv.push_back("--db");
  argv.push_back(db_);
  // Spawned under the lock, so Reap never sees the pid before it is known.
  MutexLock lock(&mu_);
  auto pid = Spawn(keel_path_, argv, fd, fd);
  close(fd);
  if (!pid.ok()) {
    if (reserved_ > 0) --reserved_;
    return pid.status();
  }
  children_.emplace(*pid, Child{run_id, std::move(on_exit)});
  return Status::Ok();
}

void ChildRuns::Reap() {
  std::vector<std::pair<ExitFn, int>> ended;
  {
    MutexLock lock(&mu_);
    for (auto it = children_.begin(); it != children_.end();) {
      int wait_status = 0;
      pid_t pid = waitpid(it->first, &wait_status, WNOHANG);
      if (pid == 0) {
        ++it;
        continue;
      }
      // Ended (or, with pid < 0, no longer ours to wait for).
      ended.emplace_back(std::move(it->second.on_exit), pid > 0 ? ExitCodeOf(wait_status) : -1);
      it = children_.erase(it);
      if (reserved_ > 0) --reserved_;
    }
  }
  for (auto& [fn, code] : ended) {
    if (fn) fn(code);
  }
}

}  // namespace keel::service
