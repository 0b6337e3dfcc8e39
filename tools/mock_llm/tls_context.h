#pragma once
// TlsContext: the OpenSSL server context of keel-mock-llm's HTTPS port. It
// holds the certificate, loaded from PEM files (--tls-cert, --tls-key) or
// made at start-up (--tls-self-signed), and picks each connection's protocol
// by ALPN: h2 when the client offers it (unless HTTP/2 is off), else
// http/1.1; a client offering no ALPN gets HTTP/1.1 too.
//
// Thread-safety: build it on one thread; then SSL objects made from ctx()
// may be used anywhere, as OpenSSL allows.

#include <memory>
#include <string>

struct ssl_ctx_st;
struct ssl_st;

namespace keel::mock {

class TlsContext {
 public:
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // A context serving the certificate chain in PEM file `cert_file` with
  // the private key in `key_file`. Null with *error naming the option and
  // the file that could not be used.
  static std::unique_ptr<TlsContext> FromFiles(const std::string& cert_file,
                                               const std::string& key_file, bool http2,
                                               std::string* error);

  // A context serving a new ECDSA P-256 certificate for localhost,
  // 127.0.0.1 and ::1 (its own CA, valid from an hour ago for 30 days),
  // whose PEM text is written to `cert_file` for clients to trust. The key
  // stays in memory. Null with *error when the file cannot be written.
  static std::unique_ptr<TlsContext> SelfSigned(const std::string& cert_file, bool http2,
                                                std::string* error);

  // A new server-side SSL for one connection (the caller owns it), or null.
  ssl_st* NewSsl() const;

 private:
  TlsContext(ssl_ctx_st* ctx, bool http2);

  ssl_ctx_st* const ctx_;
};

}  // namespace keel::mock
