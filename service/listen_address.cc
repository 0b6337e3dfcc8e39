#include "service/listen_address.h"

#include <arpa/inet.h>

#include <cstdlib>

namespace keel::service {

Result<ListenAddress> ParseListenAddress(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status::Error(ErrorKind::kPermanent,
                         "--listen '" + text + "': " + why + " (expected HOST:PORT)");
  };
  ListenAddress address;
  std::string port_text;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad("an IPv6 address needs the form [ADDRESS]:PORT");
    }
    address.host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return bad("no port");
    address.host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (address.host.find(':') != std::string::npos) {
      return bad("write an IPv6 address in brackets, [ADDRESS]:PORT");
    }
  }
  if (address.host.empty()) return bad("no host");
  char* end = nullptr;
  long port = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port < 0 || port > 65535) {
    return bad("the port must be a number from 0 to 65535");
  }
  address.port = static_cast<int>(port);
  return address;
}

bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6);
  }
  return false;
}

std::string HttpUrl(const std::string& host, int port) {
  bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + "/";
}

}  // namespace keel::service
