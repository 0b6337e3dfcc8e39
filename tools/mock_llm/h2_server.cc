#include "tools/mock_llm/h2_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <cstring>
#include <utility>

#include "tools/mock_llm/h2_session.h"
#include "tools/mock_llm/tls_context.h"

namespace keel::mock {

// TlsConnection: what the server keeps of one TLS connection: until its
// first bytes, a watch on them to learn the protocol ALPN chose; then, for
// h2, its H2Session. Owned by the connection's SSL object (ex_data), so it
// dies with the connection, whoever frees it. Loop thread only.
class TlsConnection {
 public:
  TlsConnection(H2Server* server, bufferevent* bev) : server_(server), bev_(bev) {
    server_->connections_.insert(this);
    first_bytes_ = evbuffer_add_cb(bufferevent_get_input(bev_), &OnFirstBytes, this);
  }
  ~TlsConnection() {
    h2_.reset();
    if (server_ != nullptr) server_->connections_.erase(this);
  }
  TlsConnection(const TlsConnection&) = delete;
  TlsConnection& operator=(const TlsConnection&) = delete;

  H2Session* h2() const { return h2_.get(); }

  void Detach() {
    if (h2_ != nullptr) h2_->Detach();
    server_ = nullptr;
  }

  // The SSL ex_data slot holding a TlsConnection, freed with the SSL.
  static int Slot() {
    static const int slot = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &FreeSlot);
    return slot;
  }

 private:
  static void FreeSlot(void*, void* connection, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<TlsConnection*>(connection);
  }

  // Runs when decrypted bytes first reach the bufferevent, before evhttp
  // sees them: the handshake is over, so ALPN has spoken.
  static void OnFirstBytes(evbuffer* in, const evbuffer_cb_info* info, void* self) {
    if (info->n_added == 0) return;
    auto* c = static_cast<TlsConnection*>(self);
    evbuffer_cb_clear_flags(in, c->first_bytes_, EVBUFFER_CB_ENABLED);
    // Answers are small and due at once: no Nagle delay.
    int yes = 1;
    setsockopt(bufferevent_getfd(c->bev_), IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(bufferevent_openssl_get_ssl(c->bev_), &alpn, &alpn_len);
    if (alpn_len != 2 || std::memcmp(alpn, "h2", 2) != 0) return;  // HTTP/1.1: evhttp's
    auto h2 = std::make_unique<H2Session>(c->server_, c->bev_);
    // Without a session evhttp answers the HTTP/2 preface with a 400.
    if (h2->Start()) c->h2_ = std::move(h2);
  }

  H2Server* server_;  // null once detached
  bufferevent* const bev_;
  evbuffer_cb_entry* first_bytes_ = nullptr;
  std::unique_ptr<H2Session> h2_;  // for an h2 connection
};

H2Server::H2Server(MockService* service, const TlsContext* tls, std::function<void()> on_flushed)
    : service_(service), tls_(tls), on_flushed_(std::move(on_flushed)) {}

H2Server::~H2Server() { Detach(); }

bufferevent* H2Server::NewBufferevent(event_base* base) {
  SSL* ssl = tls_->NewSsl();
  if (ssl == nullptr) return nullptr;
  // evhttp gives the bufferevent its socket, which starts the handshake.
  bufferevent* bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
  // On failure the SSL is freed already.
  if (bev == nullptr) return nullptr;
  SSL_set_ex_data(ssl, TlsConnection::Slot(), new TlsConnection(this, bev));
  return bev;
}

void H2Server::Stop() {
  for (TlsConnection* c : connections_) {
    if (c->h2() != nullptr) c->h2()->Stop();
  }
}

bool H2Server::Flushed() const {
  for (TlsConnection* c : connections_) {
    if (c->h2() != nullptr && !c->h2()->Flushed()) return false;
  }
  return true;
}

void H2Server::Detach() {
  for (TlsConnection* c : connections_) c->Detach();
  connections_.clear();
}

}  // namespace keel::mock
