#include "engine/process_owner.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <string_view>

namespace keel {
namespace {

// What /proc/PID/stat tells about a process.
struct ProcStat {
  char state = '?';
  int64_t start_ticks = 0;
};

// Reads /proc/PID/stat ("self" for the caller). False when it cannot be read
// or parsed, e.g. because the process is gone.
bool ReadProcStat(const std::string& pid, ProcStat* out) {
  std::string path = "/proc/" + pid + "/stat";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::string text;
  char buf[512];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
  close(fd);
  // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so
  // the fields start after the last ')'. STATE is field 3, starttime field 22.
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return false;
  std::string_view rest(text);
  rest.remove_prefix(paren + 1);
  constexpr int kStateField = 3;
  constexpr int kStartTimeField = 22;
  int field = kStateField;
  while (!rest.empty()) {
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    size_t end = rest.find(' ');
    std::string_view value = rest.substr(0, end);
    if (value.empty()) break;
    if (field == kStateField) {
      out->state = value.front();
    } else if (field == kStartTimeField) {
      std::string digits(value);
      char* parsed_end = nullptr;
      errno = 0;
      long long ticks = std::strtoll(digits.c_str(), &parsed_end, 10);
      if (errno != 0 || *parsed_end != '\0') return false;
      out->start_ticks = ticks;
      return true;
    }
    ++field;
    rest.remove_prefix(value.size());
  }
  return false;
}

std::string HostName() {
  char name[HOST_NAME_MAX + 1] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "localhost";
  return name;
}

// Whether a process with this pid exists (it may belong to another user).
bool PidExists(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

}  // namespace

Owner CurrentOwner() {
  Owner owner;
  owner.pid = getpid();
  owner.host = HostName();
  ProcStat stat;
  if (ReadProcStat("self", &stat)) owner.start_ticks = stat.start_ticks;
  return owner;
}

bool OwnerAlive(const Owner& owner, double heartbeat_age, double stale_after) {
  if (owner.host != HostName()) return heartbeat_age < stale_after;
  // Not a pid of a single process on this host (0 and negatives address
  // process groups in kill()).
  if (owner.pid <= 0 || owner.pid > INT_MAX) return false;
  const auto pid = static_cast<pid_t>(owner.pid);
  if (!PidExists(pid)) return false;
  ProcStat stat;
  if (!ReadProcStat(std::to_string(pid), &stat)) {
    // Unreadable /proc (hidepid) while the pid exists: assume the owner, as
    // taking over a live run would run its nodes twice.
    return PidExists(pid);
  }
  if (stat.state == 'Z' || stat.state == 'X') return false;
  // A start time of 0 was recorded where /proc was unavailable: trust the pid.
  return owner.start_ticks == 0 || stat.start_ticks == owner.start_ticks;
}

}  // namespace keel
