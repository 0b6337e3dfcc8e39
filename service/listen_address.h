#pragma once
// ListenAddress: the HOST:PORT of `keel serve --listen`, parsed and checked.
// Plain value; free functions; any thread.

#include <string>

#include "engine/status.h"

namespace keel::service {

struct ListenAddress {
  std::string host;  // as given, without brackets: "127.0.0.1", "::1", "localhost"
  int port = 0;      // 0: any free port
};

// Parses "HOST:PORT" or "[IPV6]:PORT". Fails (kPermanent) naming --listen
// and what is wrong: no port, a port outside 0-65535, an empty host.
Result<ListenAddress> ParseListenAddress(const std::string& text);

// Whether `host` only accepts connections from this machine: "localhost",
// 127.0.0.0/8 or ::1.
bool IsLoopback(const std::string& host);

// "http://HOST:PORT/" as a browser would write it (IPv6 in brackets).
std::string HttpUrl(const std::string& host, int port);

}  // namespace keel::service
