#include "service/command_output.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

extern char** environ;

namespace keel::service {
namespace {

// Closes the file descriptors it holds when it goes.
struct Fds {
  int fd[4] = {-1, -1, -1, -1};  // out read, out write, err read, err write
  ~Fds() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
  void Close(int i) {
    if (fd[i] >= 0) close(fd[i]);
    fd[i] = -1;
  }
};

}  // namespace

Result<CommandOutput> RunForOutput(const std::vector<std::string>& argv, double timeout_s,
                                   const std::atomic<bool>* abort, const std::string& cwd,
                                   size_t max_bytes) {
  if (argv.empty()) return Status::Error(ErrorKind::kPermanent, "no command to run");
  Fds fds;
  if (pipe2(fds.fd, O_CLOEXEC) != 0 || pipe2(fds.fd + 2, O_CLOEXEC) != 0) {
    return Status::Error(ErrorKind::kPermanent, std::string("pipe: ") + strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds.fd[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds.fd[3], 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // The child dies with this process (cli/parent_death.h): a server killed
  // with SIGKILL leaves no command behind.
  std::string parent = "KEEL_PARENT_DEATH=" + std::to_string(getpid());
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "KEEL_PARENT_DEATH=", 18) != 0) env.push_back(*e);
  }
  env.push_back(parent.data());
  env.push_back(nullptr);
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    return Status::Error(ErrorKind::kPermanent,
                         "cannot start " + argv[0] + ": " + strerror(spawned));
  }
  fds.Close(1);
  fds.Close(3);

  CommandOutput output;
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_s));
  bool timed_out = false;
  bool aborted = false;
  char buffer[65536];
  while (fds.fd[0] >= 0 || fds.fd[2] >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    if (abort != nullptr && abort->load()) {
      aborted = true;
      break;
    }
    pollfd polls[2] = {{fds.fd[0], POLLIN, 0}, {fds.fd[2], POLLIN, 0}};
    int ready = poll(polls, 2, static_cast<int>(std::min<long long>(left, 100)));
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (polls[i].fd < 0 || polls[i].revents == 0) continue;
      ssize_t n = read(polls[i].fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        fds.Close(i * 2);
        continue;
      }
      std::string& sink = i == 0 ? output.out : output.err;
      size_t room = sink.size() < max_bytes ? max_bytes - sink.size() : 0;
      sink.append(buffer, std::min(room, static_cast<size_t>(n)));
    }
  }
  if (timed_out || aborted) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (aborted) return Status::Error(ErrorKind::kCancelled, argv[0] + " stopped: shutting down");
  if (timed_out) {
    return Status::Error(ErrorKind::kTimeout, argv[0] + " did not finish within " +
                                                  std::to_string(static_cast<int>(timeout_s)) +
                                                  " s; killed");
  }
  output.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return output;
}

}  // namespace keel::service
