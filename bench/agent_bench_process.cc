#include "bench/agent_bench_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

namespace keel::bench {
namespace {

// Forks and execs `args` with stdout on `out_fd` and stderr on `err_fd`
// (-1: inherited). The child is sent SIGTERM should this process die first.
// Returns the pid, or -1.
pid_t Spawn(const std::vector<std::string>& args, int out_fd, int err_fd) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(127);
  dup2(out_fd, 1);
  if (err_fd >= 0) dup2(err_fd, 2);
  execv(argv[0], argv.data());
  _exit(127);
}

// Reads `fd` to EOF; *first is when the first bytes came.
std::string ReadAll(int fd, std::chrono::steady_clock::time_point* first) {
  std::string out;
  char buf[65536];
  ssize_t got;
  while ((got = read(fd, buf, sizeof buf)) > 0) {
    if (out.empty()) *first = std::chrono::steady_clock::now();
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

double Since(std::chrono::steady_clock::time_point start,
             std::chrono::steady_clock::time_point end) {
  return std::chrono::duration<double>(end - start).count();
}

// The first line `fd` yields within `timeout_ms`, without its newline; "" on
// timeout or EOF.
std::string FirstLine(int fd, int timeout_ms) {
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (line.find('\n') == std::string::npos) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) return "";
    char buf[256];
    const ssize_t got = read(fd, buf, sizeof buf);
    if (got <= 0) return "";
    line.append(buf, static_cast<size_t>(got));
  }
  return line.substr(0, line.find('\n'));
}

double Seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; }

}  // namespace

ChildRun RunChild(const std::vector<std::string>& args, const std::string& err_path) {
  ChildRun run;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return run;
  const int err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const auto start = std::chrono::steady_clock::now();
  const pid_t pid = Spawn(args, fds[1], err_fd);
  close(fds[1]);
  if (err_fd >= 0) close(err_fd);
  if (pid < 0) {
    close(fds[0]);
    return run;
  }
  auto first_output = start;
  run.out = ReadAll(fds[0], &first_output);
  close(fds[0]);
  int status = 0;
  rusage usage{};
  wait4(pid, &status, 0, &usage);
  run.wall_s = Since(start, std::chrono::steady_clock::now());
  run.output_s = Since(start, first_output);
  run.cpu_s = Seconds(usage.ru_utime) + Seconds(usage.ru_stime);
  run.peak_rss_kb = usage.ru_maxrss;
  run.ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  return run;
}

MockLlm::MockLlm(const std::string& binary, int latency_ms, const std::string& ca_file) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  std::vector<std::string> args = {binary, "--latency", std::to_string(latency_ms), "--port", "0"};
  if (!ca_file.empty()) {
    args.insert(args.end(), {"--tls-self-signed", ca_file});
    scheme_ = "https";
  }
  pid_ = Spawn(args, fds[1], -1);
  close(fds[1]);
  const std::string line = pid_ > 0 ? FirstLine(fds[0], 10000) : "";
  close(fds[0]);
  const std::string prefix = "listening on " + scheme_ + "://127.0.0.1:";
  if (line.rfind(prefix, 0) == 0) port_ = std::atoi(line.c_str() + prefix.size());
  if (port_ == 0)
    std::fprintf(stderr, "keel-mock-llm did not start (first line: '%s')\n", line.c_str());
}

MockLlm::~MockLlm() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  waitpid(pid_, nullptr, 0);
}

std::string MockLlm::base_url() const { return scheme_ + "://127.0.0.1:" + std::to_string(port_); }

double MockLlm::cpu_seconds() const {
  std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t comm_end = stat.rfind(')');
  if (comm_end == std::string::npos) return 0;
  // After the command name: state is field 3, utime and stime fields 14 and 15.
  std::istringstream fields(stat.substr(comm_end + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i) fields >> skip;
  double utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace keel::bench
