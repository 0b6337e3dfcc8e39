#include "tests/support/serve_process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>

namespace keel::testing {

ServeProcess::ServeProcess(
    const std::string& keel, const std::string& cwd, const std::string& db,
    const std::vector<std::string>& args,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& env) {
  SpawnOptions options;
  options.args = {"serve", "--listen", "127.0.0.1:0", "--db", db};
  options.args.insert(options.args.end(), args.begin(), args.end());
  options.cwd = cwd;
  options.env = env;
  options.env.emplace_back("KEEL_DB", std::nullopt);
  process_ = std::make_unique<Subprocess>(keel, options);
  const std::string marker = "listening on http://127.0.0.1:";
  if (!process_->WaitForStderr(marker, std::chrono::seconds(20))) {
    ExitInfo info = process_->Kill();
    throw std::runtime_error("keel serve did not start: " + info.Describe());
  }
  std::string err = process_->Stderr();
  port_ = std::stoi(err.substr(err.find(marker) + marker.size()));
}

std::unique_ptr<httplib::Client> ServeProcess::Client() const {
  auto client = std::make_unique<httplib::Client>("127.0.0.1", port_);
  client->set_connection_timeout(5);
  client->set_read_timeout(20);
  client->set_write_timeout(5);
  return client;
}

namespace {

// Whether `reply` holds a whole response: its headers and as many body bytes
// as its Content-Length says.
bool ResponseComplete(const std::string& reply) {
  size_t end = reply.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  size_t length_at = reply.find("Content-Length: ");
  if (length_at == std::string::npos || length_at > end) return true;
  size_t length = std::stoul(reply.substr(length_at + 16));
  return reply.size() >= end + 4 + length;
}

}  // namespace

std::string RawExchange(int port, const std::string& bytes, int timeout_ms) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    close(fd);
    throw std::runtime_error("connect failed");
  }
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  char buffer[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    reply.append(buffer, static_cast<size_t>(n));
    if (ResponseComplete(reply)) break;
  }
  close(fd);
  return reply;
}

}  // namespace keel::testing
