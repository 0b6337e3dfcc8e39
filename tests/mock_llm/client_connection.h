#pragma once
// ClientConnection: the accepted TCP socket a request arrived on, so a
// handler can notice the client going away while it waits, and can drop the
// connection before anything is written (with a FIN, or a RST).
//
// cpp-httplib 0.11 does not hand handlers their socket, so the constructor
// finds it in /proc/self/fd by the request's local and remote address. While
// a handler runs, the library neither reads nor writes its socket, so the
// handler may poll it. When the socket cannot be found, waits still last
// their time (without noticing a closed client) and Drop does nothing.
//
// Use from the thread handling the request, only while its handler runs.

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <optional>

namespace keel::mock {

class ClientConnection {
 public:
  explicit ClientConnection(const httplib::Request& request);

  bool found() const { return fd_ >= 0; }

  enum class WaitEnd { kElapsed, kClientClosed, kStopped };

  // Waits until `until` (nullopt: for ever), the client closes the
  // connection, or `stop` becomes true (checked every few milliseconds).
  WaitEnd Wait(std::optional<std::chrono::steady_clock::time_point> until,
               const std::atomic<bool>& stop);

  // Closes the connection now: with a RST when `reset`, else with a FIN.
  // The descriptor stays open on an unconnected socket, so
  // whatever the library still writes fails harmlessly and its own close
  // cannot hit a descriptor reused by another connection. Returns false when
  // the socket was not found or could not be replaced.
  bool Drop(bool reset);

 private:
  int fd_ = -1;
};

}  // namespace keel::mock
