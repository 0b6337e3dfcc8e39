#pragma once
// What the HttpLoop tests (http_loop_test, http_loop_stop_test) share: a
// local cpp-httplib server with the routes they use, on its own thread, and
// helpers to send a request and wait for its answer. Test thread only; the
// server answers on its pool's threads.

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "nodes/http_loop.h"
#include "nodes/http_transfer.h"

namespace keel::testing {

// Polls `done` every 5 ms for up to `limit`; true once it holds.
template <typename Predicate>
inline bool WaitFor(Predicate done,
                    std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

inline int ThreadCount() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::stoi(line.substr(8));
  }
  return -1;
}

// An HTTP server on 127.0.0.1 with the routes the tests use, on its own
// thread. Declare it before the HttpLoop so the loop (and its connections)
// goes first.
class TestServer {
 public:
  explicit TestServer(size_t workers = 16) {
    signal(SIGPIPE, SIG_IGN);
    server_.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    server_.Get("/echo",
                [this](const httplib::Request& req, httplib::Response& res) { Echo(req, res); });
    server_.Post("/echo",
                 [this](const httplib::Request& req, httplib::Response& res) { Echo(req, res); });
    server_.Put("/echo",
                [this](const httplib::Request& req, httplib::Response& res) { Echo(req, res); });
    server_.Get(R"(/status/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
      res.status = std::stoi(req.matches[1]);
      res.set_content("status " + std::string(req.matches[1]), "text/plain");
    });
    server_.Get("/retry", [](const httplib::Request& req, httplib::Response& res) {
      res.status = 429;
      for (const auto& [name, value] : req.params) res.set_header(name.c_str(), value);
    });
    server_.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      res.set_content("slow", "text/plain");
    });
    server_.Get("/count", [this](const httplib::Request&, httplib::Response& res) {
      ++counted;
      res.set_content("counted", "text/plain");
    });
    // Streams a byte every 20 ms until the client goes away.
    server_.Get("/drip", [this](const httplib::Request&, httplib::Response& res) {
      ++drips_started;
      res.set_chunked_content_provider("text/plain", [this](size_t, httplib::DataSink& sink) {
        if (!sink.write("x", 1)) {
          ++drips_closed;
          return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        return true;
      });
    });
    // `n` bytes, with a Content-Length (/bytes) or chunked without one (/stream).
    server_.Get(R"(/bytes/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(std::string(std::stoul(req.matches[1]), 'b'), "text/plain");
    });
    server_.Get(R"(/stream/(\d+))", [this](const httplib::Request& req, httplib::Response& res) {
      size_t total = std::stoul(req.matches[1]);
      res.set_chunked_content_provider(
          "text/plain", [this, total, sent = size_t{0}](size_t, httplib::DataSink& sink) mutable {
            std::string chunk(std::min<size_t>(16384, total - sent), 's');
            if (!sink.write(chunk.data(), chunk.size())) {
              ++streams_closed;
              return false;
            }
            sent += chunk.size();
            if (sent == total) sink.done();
            return true;
          });
    });
    int listener = -1;
    server_.set_socket_options([&listener](int sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
      listener = sock;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    // httplib listens with a backlog of 5, which drops a burst of connects
    // (and curl retries them only after a second); Linux lets a second
    // listen() raise it.
    REQUIRE(listen(listener, 512) == 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // One request through, so the workers are up before a test starts its
    // clock (slow under sanitizers with many workers).
    httplib::Client client("127.0.0.1", port_);
    bool ready =
        WaitFor([&] { return server_.is_running() && client.Get("/echo"); },
                std::chrono::milliseconds(60000));
    if (!ready) {
      server_.stop();
      thread_.join();
    }
    REQUIRE(ready);
  }

  ~TestServer() {
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

  std::atomic<int> counted{0};
  std::atomic<int> drips_started{0};
  std::atomic<int> drips_closed{0};
  std::atomic<int> streams_closed{0};  // /stream transfers the client stopped early

 private:
  static void Echo(const httplib::Request& req, httplib::Response& res) {
    res.status = 201;
    res.set_header("X-Reply", "Value");
    res.set_content(req.method + "|" + req.get_header_value("X-Test") + "|" + req.body,
                    "text/plain");
  }

  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

// Sends `request` and returns a future for its response.
inline std::future<HttpResponse> Fetch(HttpLoop& loop, HttpRequest request) {
  auto promise = std::make_shared<std::promise<HttpResponse>>();
  auto future = promise->get_future();
  loop.Send(std::move(request), [promise](HttpResponse r) { promise->set_value(std::move(r)); });
  return future;
}

inline HttpResponse Await(std::future<HttpResponse>& future) {
  REQUIRE(future.wait_for(std::chrono::seconds(15)) == std::future_status::ready);
  return future.get();
}

inline HttpRequest Get(const std::string& url) {
  HttpRequest request;
  request.method = "GET";
  request.url = url;
  return request;
}

inline std::string HttpDate(time_t when) {
  char text[64];
  struct tm parts;
  gmtime_r(&when, &parts);
  strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &parts);
  return text;
}

}  // namespace keel::testing
