#pragma once
// WebhookReceiver: an HTTP server on 127.0.0.1 (cpp-httplib) standing in
// for an alerts webhook. It keeps the body of every POST and answers with
// the status the test sets (200 unless told otherwise). Header-only; its
// methods may be called from any thread (mu_ guards the state).

#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "engine/mutex.h"

namespace keel::testing {

// A loopback port nothing listens on (it was free a moment ago).
inline int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

class WebhookReceiver {
 public:
  // Listens on `port` (0: any free one).
  explicit WebhookReceiver(int port = 0) {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      MutexLock lock(&mu_);
      bodies_.push_back(req.body);
      res.status = status_;
      res.set_content("{}", "application/json");
    });
    if (port == 0) {
      port_ = server_.bind_to_any_port("127.0.0.1");
    } else {
      port_ = server_.bind_to_port("127.0.0.1", port) ? port : -1;
    }
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 10000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(server_.is_running());
  }
  ~WebhookReceiver() {
    server_.stop();
    thread_.join();
  }
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  int port() const { return port_; }
  void Answer(int status) {
    MutexLock lock(&mu_);
    status_ = status;
  }
  // Every body posted so far, the failed ones too.
  std::vector<std::string> bodies() {
    MutexLock lock(&mu_);
    return bodies_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  Mutex mu_;
  int status_ GUARDED_BY(mu_) = 200;
  std::vector<std::string> bodies_ GUARDED_BY(mu_);
};

}  // namespace keel::testing
