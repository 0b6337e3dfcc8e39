#pragma once
// CommitCutter: a TCP proxy in front of a PostgreSQL server on 127.0.0.1
// that, once armed, cuts the first connection whose client sends a COMMIT:
// the COMMIT reaches the server, which commits, but its answer never
// reaches the client (tests of a commit whose outcome is unknown).
//
// Thread-safety: its own thread relays; Arm() and cuts() from any thread.

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace keel::test {

class CommitCutter {
 public:
  explicit CommitCutter(int server_port) : server_port_(server_port) {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(listen(listener_, 16) == 0);
    socklen_t len = sizeof addr;
    getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~CommitCutter() {
    stop_ = true;
    thread_.join();
    close(listener_);
  }
  int port() const { return port_; }
  void Arm() { armed_ = true; }
  int cuts() const { return cuts_; }

 private:
  struct Pair {
    int client;
    int server;
  };
  void Serve() {
    std::vector<Pair> pairs;
    while (!stop_) {
      std::vector<pollfd> fds{{listener_, POLLIN, 0}};
      for (const Pair& p : pairs) {
        fds.push_back({p.client, POLLIN, 0});
        fds.push_back({p.server, POLLIN, 0});
      }
      if (poll(fds.data(), fds.size(), 20) <= 0) continue;
      // Pairs accepted below were not polled: they wait for the next round.
      const size_t polled = pairs.size();
      if (fds[0].revents & POLLIN) {
        int client = accept(listener_, nullptr, nullptr);
        int server = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = htons(static_cast<uint16_t>(server_port_));
        if (connect(server, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
          pairs.push_back({client, server});
        } else {
          close(client);
          close(server);
        }
      }
      std::vector<Pair> kept(pairs.begin() + static_cast<ptrdiff_t>(polled), pairs.end());
      for (size_t i = 0; i < polled; ++i) {
        const Pair& p = pairs[i];
        bool open = true;
        char buf[65536];
        if (fds[1 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR)) {
          ssize_t n = read(p.client, buf, sizeof buf);
          if (n <= 0 || write(p.server, buf, static_cast<size_t>(n)) != n) {
            open = false;
          } else if (armed_ && std::string(buf, static_cast<size_t>(n)).find("COMMIT") !=
                                   std::string::npos) {
            armed_ = false;
            ++cuts_;
            // Let the server commit, then drop both sides unanswered.
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
            open = false;
          }
        }
        if (open && (fds[2 + 2 * i].revents & (POLLIN | POLLHUP | POLLERR))) {
          ssize_t n = read(p.server, buf, sizeof buf);
          if (n <= 0 || write(p.client, buf, static_cast<size_t>(n)) != n) open = false;
        }
        if (open) {
          kept.push_back(p);
        } else {
          close(p.client);
          close(p.server);
        }
      }
      pairs.swap(kept);
    }
    for (const Pair& p : pairs) {
      close(p.client);
      close(p.server);
    }
  }

  const int server_port_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> armed_{false};
  std::atomic<int> cuts_{0};
  std::thread thread_;
};

}  // namespace keel::test
