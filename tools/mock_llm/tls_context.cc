#include "tools/mock_llm/tls_context.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

namespace keel::mock {
namespace {

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using CtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX, SSL_CTX_free>>;
using BnPtr = std::unique_ptr<BIGNUM, Deleter<BIGNUM, BN_free>>;

constexpr long kHour = 3600;
constexpr long kValidFor = 30 * 24 * kHour;

// The oldest error OpenSSL queued, as text, and the queue emptied.
std::string OpenSslError() {
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// Whether `file` can be opened for reading; else *why says why not.
bool Readable(const std::string& file, std::string* why) {
  std::FILE* f = std::fopen(file.c_str(), "r");
  if (f == nullptr) {
    *why = std::strerror(errno);
    return false;
  }
  std::fclose(f);
  return true;
}

// Protocols in ALPN wire format (length-prefixed), and the lists the
// server picks from, best first.
constexpr unsigned char kH2[] = {2, 'h', '2'};
constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
const unsigned char* const kPreferH2[] = {kH2, kHttp11, nullptr};
const unsigned char* const kOnlyHttp11[] = {kHttp11, nullptr};

// The protocol `want` (length-prefixed) within the client's list `in`, or null.
const unsigned char* FindAlpn(const unsigned char* in, unsigned int in_len,
                              const unsigned char* want) {
  for (unsigned int i = 0; i < in_len; i += 1u + in[i]) {
    if (i + 1u + in[i] <= in_len && in[i] == want[0] &&
        std::memcmp(in + i, want, 1u + want[0]) == 0) {
      return in + i;
    }
  }
  return nullptr;
}

// `list` is kPreferH2 or kOnlyHttp11.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
               unsigned int in_len, void* list) {
  for (auto want = static_cast<const unsigned char* const*>(list); *want != nullptr; ++want) {
    if (const unsigned char* found = FindAlpn(in, in_len, *want)) {
      *out = found + 1;
      *out_len = found[0];
      return SSL_TLSEXT_ERR_OK;
    }
  }
  // No protocol in common: go on without ALPN, which means HTTP/1.1.
  return SSL_TLSEXT_ERR_NOACK;
}

CtxPtr NewServerCtx(std::string* error) {
  CtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (ctx == nullptr) {
    *error = "cannot make a TLS context: " + OpenSslError();
    return nullptr;
  }
  // HTTP/2 requires TLS 1.2 or later (RFC 9113, section 9.2).
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  return ctx;
}

bool AddExtension(X509* cert, int nid, const char* value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
  if (ext == nullptr) return false;
  const bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

// A self-signed certificate for `key`, or null.
CertPtr MakeCertificate(EVP_PKEY* key) {
  CertPtr cert(X509_new());
  BnPtr serial(BN_new());
  if (cert == nullptr || serial == nullptr || X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      BN_rand(serial.get(), 63, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kHour) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), kValidFor) == nullptr ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return nullptr;
  }
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                 reinterpret_cast<const unsigned char*>("localhost"), -1, -1,
                                 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1) {
    return nullptr;
  }
  // CA:TRUE lets OpenSSL (and so libcurl) take the certificate as its own
  // trust anchor; the subject key id must come before the authority's.
  const std::pair<int, const char*> extensions[] = {
      {NID_basic_constraints, "critical,CA:TRUE"},
      {NID_key_usage, "critical,digitalSignature,keyCertSign"},
      {NID_ext_key_usage, "serverAuth"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"},
      {NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"},
  };
  for (const auto& [nid, value] : extensions) {
    if (!AddExtension(cert.get(), nid, value)) return nullptr;
  }
  if (X509_sign(cert.get(), key, EVP_sha256()) == 0) return nullptr;
  return cert;
}

}  // namespace

TlsContext::TlsContext(SSL_CTX* ctx, bool http2) : ctx_(ctx) {
  SSL_CTX_set_alpn_select_cb(ctx_, &SelectAlpn,
                             const_cast<const unsigned char**>(http2 ? kPreferH2 : kOnlyHttp11));
}

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

SSL* TlsContext::NewSsl() const { return SSL_new(ctx_); }

std::unique_ptr<TlsContext> TlsContext::FromFiles(const std::string& cert_file,
                                                  const std::string& key_file, bool http2,
                                                  std::string* error) {
  std::string why;
  if (!Readable(cert_file, &why)) {
    *error = "--tls-cert: cannot read " + cert_file + ": " + why;
    return nullptr;
  }
  if (!Readable(key_file, &why)) {
    *error = "--tls-key: cannot read " + key_file + ": " + why;
    return nullptr;
  }
  CtxPtr ctx = NewServerCtx(error);
  if (ctx == nullptr) return nullptr;
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    *error = "--tls-cert: " + cert_file + " is not a PEM certificate: " + OpenSslError();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    *error = "--tls-key: " + key_file + " is not a PEM private key: " + OpenSslError();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    *error = "--tls-key: " + key_file + " does not match the certificate in " + cert_file;
    ERR_clear_error();
    return nullptr;
  }
  return std::unique_ptr<TlsContext>(new TlsContext(ctx.release(), http2));
}

std::unique_ptr<TlsContext> TlsContext::SelfSigned(const std::string& cert_file, bool http2,
                                                   std::string* error) {
  KeyPtr key(EVP_EC_gen("P-256"));
  CertPtr cert = key == nullptr ? nullptr : MakeCertificate(key.get());
  if (cert == nullptr) {
    *error = "--tls-self-signed: cannot make a certificate: " + OpenSslError();
    return nullptr;
  }
  CtxPtr ctx = NewServerCtx(error);
  if (ctx == nullptr) return nullptr;
  if (SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1) {
    *error = "--tls-self-signed: cannot use the certificate: " + OpenSslError();
    return nullptr;
  }
  std::FILE* out = std::fopen(cert_file.c_str(), "w");
  if (out == nullptr) {
    *error = "--tls-self-signed: cannot write " + cert_file + ": " + std::strerror(errno);
    return nullptr;
  }
  const bool written = PEM_write_X509(out, cert.get()) == 1;
  if (std::fclose(out) != 0 || !written) {
    *error = "--tls-self-signed: cannot write " + cert_file;
    return nullptr;
  }
  return std::unique_ptr<TlsContext>(new TlsContext(ctx.release(), http2));
}

}  // namespace keel::mock
