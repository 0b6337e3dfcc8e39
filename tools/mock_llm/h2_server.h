#pragma once
// H2Server: the TLS side of keel-mock-llm. evhttp accepts every connection
// of the HTTPS port and asks NewBufferevent for its bufferevent: a TLS one
// (bufferevent_openssl) whose handshake picks the protocol by ALPN. When the
// first bytes arrive the protocol is known: http/1.1 stays with evhttp,
// which serves it as it serves plain HTTP; h2 goes to an H2Session, which
// takes the bufferevent's callbacks over. evhttp still owns every
// connection and frees it; the per-connection state lives as long as the
// connection's SSL object (it is the SSL's ex_data).
//
// Thread-safety: on the event loop thread only.

#include <functional>
#include <memory>
#include <unordered_set>

struct bufferevent;
struct event_base;

namespace keel::mock {

class MockService;
class TlsContext;
class TlsConnection;

class H2Server {
 public:
  // `service` and `tls` must outlive the server and its connections.
  // `on_flushed` runs when an HTTP/2 connection has written all it had
  // after Stop.
  H2Server(MockService* service, const TlsContext* tls, std::function<void()> on_flushed);
  ~H2Server();
  H2Server(const H2Server&) = delete;
  H2Server& operator=(const H2Server&) = delete;

  // For evhttp_set_bevcb: the bufferevent of a new TLS connection (evhttp
  // sets its socket), or null when OpenSSL is out of memory.
  bufferevent* NewBufferevent(event_base* base);

  // Sends GOAWAY on every HTTP/2 connection.
  void Stop();
  // True when no HTTP/2 connection has anything left to write.
  bool Flushed() const;
  // Forgets every connection (they are about to be freed with evhttp):
  // nothing is logged or written after this.
  void Detach();

  MockService* service() const { return service_; }

 private:
  friend class H2Session;
  friend class TlsConnection;

  MockService* const service_;
  const TlsContext* const tls_;
  const std::function<void()> on_flushed_;
  std::unordered_set<TlsConnection*> connections_;  // TLS connections alive
};

}  // namespace keel::mock
