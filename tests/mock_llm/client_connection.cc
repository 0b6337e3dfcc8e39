#include "tests/mock_llm/client_connection.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

namespace keel::mock {
namespace {

// Poll slice: how soon a wait notices `stop`.
constexpr std::chrono::milliseconds kSlice{20};

bool SameEndpoint(const sockaddr_storage& addr, const std::string& ip, int port) {
  char text[INET6_ADDRSTRLEN] = {0};
  int actual_port = -1;
  if (addr.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
    inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
    actual_port = ntohs(in->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
    actual_port = ntohs(in6->sin6_port);
  }
  return actual_port == port && ip == text;
}

// True when `fd` is the connection `req` came on.
bool IsRequestSocket(int fd, const httplib::Request& req) {
  sockaddr_storage peer{};
  socklen_t len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0 ||
      !SameEndpoint(peer, req.remote_addr, req.remote_port)) {
    return false;
  }
  sockaddr_storage local{};
  len = sizeof local;
  return getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0 &&
         SameEndpoint(local, req.local_addr, req.local_port);
}

// The highest descriptor a request was found on so far. Descriptors are
// handed out lowest-free-first, so a new connection's is usually near it:
// scanning down from just above it finds it in a few steps.
std::atomic<int> highest_found{0};

int Found(int fd) {
  int seen = highest_found.load();
  while (fd > seen && !highest_found.compare_exchange_weak(seen, fd)) {
  }
  return fd;
}

int FindSocket(const httplib::Request& req) {
  for (int fd = highest_found.load() + 64; fd >= 0; --fd) {
    if (IsRequestSocket(fd, req)) return Found(fd);
  }
  // More than 64 descriptors opened since: look at every one.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    const int fd = std::atoi(entry.path().filename().c_str());
    if (IsRequestSocket(fd, req)) return Found(fd);
  }
  return -1;
}

}  // namespace

ClientConnection::ClientConnection(const httplib::Request& request) : fd_(FindSocket(request)) {}

ClientConnection::WaitEnd ClientConnection::Wait(
    std::optional<std::chrono::steady_clock::time_point> until, const std::atomic<bool>& stop) {
  using Clock = std::chrono::steady_clock;
  while (true) {
    if (stop.load()) return WaitEnd::kStopped;
    auto slice = kSlice;
    if (until) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(*until - Clock::now());
      if (left.count() <= 0) return WaitEnd::kElapsed;
      slice = std::min(slice, left);
    }
    if (fd_ < 0) {
      std::this_thread::sleep_for(slice);
      continue;
    }
    // POLLRDHUP: the client shut its side down (closed the connection).
    pollfd p{fd_, POLLRDHUP, 0};
    if (poll(&p, 1, static_cast<int>(slice.count())) > 0 &&
        (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
      return WaitEnd::kClientClosed;
    }
  }
}

bool ClientConnection::Drop(bool reset) {
  if (fd_ < 0) return false;
  if (reset) {
    linger abort{1, 0};  // close() then sends a RST instead of a FIN
    setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  }
  const int placeholder = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (placeholder < 0) return false;
  // dup2 closes the connection's last descriptor and reuses its number.
  const bool ok = dup2(placeholder, fd_) >= 0;
  close(placeholder);
  return ok;
}

}  // namespace keel::mock
