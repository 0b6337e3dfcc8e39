#include "nodes/process_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace keel {
namespace {

// What the child finds in PATH when neither it nor keel sets one (glibc's default).
constexpr const char* kDefaultPath = "/bin:/usr/bin";

// Closes the descriptors it holds when it goes out of scope, unless released.
struct FdSet {
  std::vector<int> fds;
  ~FdSet() {
    for (int fd : fds) {
      if (fd >= 0) close(fd);
    }
  }
  int Add(int fd) {
    fds.push_back(fd);
    return fd;
  }
  void Release(int fd) {
    for (int& held : fds) {
      if (held == fd) held = -1;
    }
  }
};

Status Permanent(std::string message) {
  return Status::Error(ErrorKind::kPermanent, std::move(message));
}

Status SystemFailure(const char* what, int error) {
  return Status::Error(ErrorKind::kTransient, std::string(what) + ": " + std::strerror(error));
}

// The child's environment: keel's, with request.env set on top.
std::vector<std::string> ChildEnvironment(const ProcessRequest& request) {
  std::vector<std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string_view item(*entry);
    std::string_view name = item.substr(0, item.find('='));
    bool replaced = false;
    for (const auto& [key, value] : request.env) replaced = replaced || key == name;
    if (!replaced) env.emplace_back(item);
  }
  for (const auto& [key, value] : request.env) env.push_back(key + "=" + value);
  return env;
}

std::string EnvValue(const std::vector<std::string>& env, std::string_view name) {
  for (const std::string& entry : env) {
    if (entry.size() > name.size() && entry.compare(0, name.size(), name) == 0 &&
        entry[name.size()] == '=') {
      return entry.substr(name.size() + 1);
    }
  }
  return "";
}

// Why `path` cannot be run, or "" when it can.
std::string NotRunnable(const std::string& path, const std::string& shown) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return "program not found: " + shown + " (" + std::strerror(errno) + ")";
  }
  if (S_ISDIR(info.st_mode)) return "program " + shown + " is a directory";
  if (!S_ISREG(info.st_mode)) return "program " + shown + " is not a regular file";
  if (access(path.c_str(), X_OK) != 0) return "program " + shown + " is not executable";
  return "";
}

// The path to exec for argv[0]: a path as given (checked from `cwd`), or
// the first executable of that name in the child's PATH.
Result<std::string> ResolveProgram(const ProcessRequest& request,
                                   const std::vector<std::string>& env) {
  const std::string& program = request.argv[0];
  if (program.empty()) return Permanent("the program (the command's first item) is empty");
  if (program.find('/') != std::string::npos) {
    std::string checked = program;
    if (program[0] != '/' && !request.cwd.empty()) checked = request.cwd + "/" + program;
    std::string problem = NotRunnable(checked, checked);
    if (!problem.empty()) return Permanent(problem);
    return program;  // exec'd after the chdir, so a relative path means what it says
  }
  std::string path = EnvValue(env, "PATH");
  if (path.empty()) path = kDefaultPath;
  std::string first_problem;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string dir = path.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    std::string problem = NotRunnable(candidate, candidate);
    if (problem.empty()) {
      if (candidate[0] != '/' && !request.cwd.empty()) {
        // A relative PATH entry: name it from keel's directory, not the child's.
        char here[4096];
        if (getcwd(here, sizeof here) != nullptr) candidate = std::string(here) + "/" + candidate;
      }
      return candidate;
    }
    if (first_problem.empty() && problem.rfind("program not found", 0) != 0) {
      first_problem = problem;
    }
    start = end + 1;
  }
  if (!first_problem.empty()) return Permanent(first_problem);
  return Permanent("program not found: " + program + " (not in PATH=" + path + ")");
}

Status CheckCwd(const std::string& cwd) {
  if (cwd.empty()) return Status::Ok();
  struct stat info;
  if (stat(cwd.c_str(), &info) != 0) {
    return Permanent("cwd " + cwd + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(info.st_mode)) return Permanent("cwd " + cwd + " is not a directory");
  return Status::Ok();
}

// A pipe whose both ends are close-on-exec; the parent's end non-blocking.
Status MakePipe(int* read_end, int* write_end, bool parent_reads, FdSet* fds) {
  int ends[2];
  if (pipe2(ends, O_CLOEXEC) != 0) return SystemFailure("pipe", errno);
  *read_end = fds->Add(ends[0]);
  *write_end = fds->Add(ends[1]);
  int parent = parent_reads ? ends[0] : ends[1];
  fcntl(parent, F_SETFL, fcntl(parent, F_GETFL) | O_NONBLOCK);
  return Status::Ok();
}

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  int fd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0) fcntl(fd, F_SETFD, FD_CLOEXEC);
  return fd;
#else
  (void)pid;
  return -1;
#endif
}

// Releases the posix_spawn attribute objects on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
  }
};

}  // namespace

Result<SpawnedProcess> SpawnProcess(const ProcessRequest& request) {
  if (request.argv.empty()) return Permanent("the command is empty");
  if (Status cwd = CheckCwd(request.cwd); !cwd.ok()) return cwd;
  std::vector<std::string> env = ChildEnvironment(request);
  auto program = ResolveProgram(request, env);
  if (!program.ok()) return program.status();

  FdSet fds;
  SpawnedProcess spawned;
  int child_in = -1, child_out = -1, child_err = -1;
  if (request.has_stdin) {
    if (Status s = MakePipe(&child_in, &spawned.stdin_fd, false, &fds); !s.ok()) return s;
  } else {
    child_in = fds.Add(open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (child_in < 0) return SystemFailure("/dev/null", errno);
  }
  if (Status s = MakePipe(&spawned.stdout_fd, &child_out, true, &fds); !s.ok()) return s;
  if (Status s = MakePipe(&spawned.stderr_fd, &child_err, true, &fds); !s.ok()) return s;

  SpawnSetup setup;
  posix_spawn_file_actions_adddup2(&setup.actions, child_in, 0);
  posix_spawn_file_actions_adddup2(&setup.actions, child_out, 1);
  posix_spawn_file_actions_adddup2(&setup.actions, child_err, 2);
  // Whatever keel holds open (sockets, the database, other children's
  // pipes) stays out of the child, close-on-exec or not.
  posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);
  if (!request.cwd.empty())
    posix_spawn_file_actions_addchdir_np(&setup.actions, request.cwd.c_str());
  // Its own process group (so a timeout can kill all it started), no
  // blocked signals, and default actions for every signal (keel ignores
  // SIGPIPE, which exec would otherwise pass on).
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  sigdelset(&all, SIGKILL);
  sigdelset(&all, SIGSTOP);
  posix_spawnattr_setpgroup(&setup.attr, 0);
  posix_spawnattr_setsigmask(&setup.attr, &none);
  posix_spawnattr_setsigdefault(&setup.attr, &all);
  posix_spawnattr_setflags(&setup.attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  for (const std::string& arg : request.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (std::string& entry : env) envp.push_back(entry.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  int error =
      posix_spawn(&pid, program->c_str(), &setup.actions, &setup.attr, argv.data(), envp.data());
  if (error != 0) {
    switch (error) {
      case ENOENT:
      case ENOTDIR:
        return Permanent("cannot run " + *program +
                         (request.cwd.empty() ? "" : " in cwd " + request.cwd) + ": " +
                         std::strerror(error));
      case EACCES:
      case ENOEXEC:
      case EISDIR:
      case ELOOP:
      case ENAMETOOLONG:
        return Permanent("cannot run " + *program + ": " + std::strerror(error));
      default:
        return SystemFailure(("cannot run " + *program).c_str(), error);
    }
  }
  spawned.pid = pid;
  spawned.pidfd = PidfdOpen(pid);
  for (int fd : {spawned.stdin_fd, spawned.stdout_fd, spawned.stderr_fd}) fds.Release(fd);
  return spawned;  // `fds` closes the child's ends
}

}  // namespace keel
