#pragma once
// SseClient: reads a Server-Sent Events stream over HTTP for the service's
// tests: messages (id and data) and comments, as they arrive, until the
// caller's `on_message` says stop, the server ends the stream or the
// connection breaks. One instance per thread.

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace keel::testing {

struct SseMessage {
  int64_t id = -1;  // -1 when the message had no id
  std::string data;
};

class SseClient {
 public:
  SseClient(std::string host, int port) : host_(std::move(host)), port_(port) {}

  // GETs `path` with `headers`; calls `on_message` for each message (false
  // disconnects) and `on_comment` for each comment line. Disconnects by
  // itself once `limit` has passed and anything (a heartbeat) arrives.
  // Returns the HTTP status (0 when no response arrived).
  int Read(const std::string& path, const httplib::Headers& headers,
           const std::function<bool(const SseMessage&)>& on_message,
           const std::function<void(const std::string&)>& on_comment = nullptr,
           std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    httplib::Client client(host_, port_);
    client.set_read_timeout(10, 0);
    std::string buffer;
    SseMessage current;
    bool stop = false;
    int status = 0;
    auto result = client.Get(
        path, headers,
        [&](const httplib::Response& response) {
          status = response.status;
          return true;
        },
        [&](const char* data, size_t length) {
          buffer.append(data, length);
          size_t start = 0;
          for (size_t nl; !stop && (nl = buffer.find('\n', start)) != std::string::npos;
               start = nl + 1) {
            std::string line = buffer.substr(start, nl - start);
            if (line.empty()) {
              if (current.id >= 0 || !current.data.empty()) {
                if (!on_message(current)) stop = true;
              }
              current = SseMessage{};
            } else if (line[0] == ':') {
              if (on_comment) on_comment(line);
            } else if (line.rfind("id: ", 0) == 0) {
              current.id = std::stoll(line.substr(4));
            } else if (line.rfind("data: ", 0) == 0) {
              if (!current.data.empty()) current.data += "\n";
              current.data += line.substr(6);
            }
          }
          buffer.erase(0, start);
          return !stop && std::chrono::steady_clock::now() < deadline;
        });
    if (result) status = result->status;
    return status;
  }

 private:
  std::string host_;
  int port_;
};

}  // namespace keel::testing
