// keel-mock-llm: an OpenAI- and Anthropic-compatible chat server (HTTP, or
// HTTPS with HTTP/2) that answers deterministically and injects faults on
// demand, for tests, benches and rehearsing outages (docs/mock-llm.md).
//
// Exit codes: 0 after SIGTERM/SIGINT, 1 when it cannot listen, 2 for bad options.

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>

#include "nodes/mock_reply.h"
#include "tools/mock_llm/mock_server.h"
#include "tools/mock_llm/request_log.h"
#include "tools/mock_llm/tls_context.h"

namespace keel::mock {
namespace {

constexpr int kExitUsage = 2;

int Usage(const std::string& message) {
  std::fprintf(stderr, "keel-mock-llm: error: %s\nsee 'keel-mock-llm --help'\n", message.c_str());
  return kExitUsage;
}

int Main(int argc, char** argv) {
  MockServerOptions opt;
  FaultPlanOptions& f = opt.service.faults;
  FaultRates& rates = f.rates;
  std::string log_path;
  std::string tls_cert;
  std::string tls_key;
  std::string tls_self_signed;
  bool no_http2 = false;

  CLI::App app{
      "keel-mock-llm: a deterministic OpenAI- and Anthropic-compatible LLM server that injects "
      "faults (see docs/mock-llm.md)"};
  app.add_option("--host", opt.host, "address to listen on")->capture_default_str();
  app.add_option("--port", opt.port, "port; 0 picks a free one")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--latency", f.latency_ms, "milliseconds added to every chat request")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--jitter", f.jitter_ms, "up to this many more milliseconds, drawn per request")
      ->check(CLI::NonNegativeNumber);
  const auto rate = [&](const char* name, double* value, const char* what) {
    app.add_option(name, *value, std::string("probability of ") + what)
        ->check(CLI::Range(0.0, 1.0));
  };
  rate("--error-rate", &rates.error, "a 500");
  rate("--rate-limit-rate", &rates.rate_limit, "a 429 (with Retry-After)");
  rate("--hang-rate", &rates.hang, "never answering");
  rate("--malformed-rate", &rates.malformed, "a 200 whose body is not JSON");
  rate("--truncate-rate", &rates.truncate,
       "a body cut short, then the connection closed (HTTP/2: the stream reset)");
  rate("--reset-rate", &rates.reset, "the connection (HTTP/2: the stream) reset without an answer");
  app.add_option("--retry-after", opt.service.retry_after, "seconds sent as Retry-After with a 429")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--seed", f.seed, "seed of the fault and jitter draws")->capture_default_str();
  app.add_option("--fail-first", f.fail_first, "the first N chat requests get --fail-mode")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--fail-mode", f.fail_mode,
                 "500|502|503|529|429|400|401|403|404|hang|malformed|truncated|reset")
      ->capture_default_str()
      ->check([](const std::string& mode) {
        return IsMockFault(mode) ? std::string()
                                 : "unknown fault mode '" + mode +
                                       "' (500 502 503 529 429 400 401 403 404 hang malformed "
                                       "truncated reset)";
      });
  app.add_option("--require-key", opt.service.require_key,
                 "answer 401 unless 'Authorization: Bearer KEY' or 'x-api-key: KEY' is sent");
  app.add_option("--log", log_path, "write one JSON line per chat request to FILE");
  auto* cert = app.add_option("--tls-cert", tls_cert,
                              "serve HTTPS with the PEM certificate (chain) in FILE");
  auto* key = app.add_option("--tls-key", tls_key, "the PEM private key of --tls-cert");
  cert->needs(key);
  key->needs(cert);
  app.add_option("--tls-self-signed", tls_self_signed,
                 "serve HTTPS with a new self-signed certificate for localhost, written to FILE "
                 "(PEM) for clients to trust")
      ->excludes(cert)
      ->excludes(key);
  app.add_flag("--no-http2", no_http2, "with HTTPS, offer only http/1.1 in ALPN");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    return Usage(e.what());
  }
  if (rates.Sum() > 1) {
    char sum[32];
    std::snprintf(sum, sizeof sum, "%g", rates.Sum());
    return Usage(
        "--error-rate, --rate-limit-rate, --hang-rate, --malformed-rate, --truncate-rate and "
        "--reset-rate add up to " +
        std::string(sum) + "; they must not exceed 1");
  }

  const bool tls = !tls_cert.empty() || !tls_self_signed.empty();
  if (no_http2 && !tls) return Usage("--no-http2 needs --tls-cert/--tls-key or --tls-self-signed");

  RequestLog log;
  std::string error;
  if (!log_path.empty() && !log.Open(log_path, &error)) return Usage("--log: " + error);

  std::unique_ptr<TlsContext> tls_context;
  if (!tls_cert.empty()) {
    tls_context = TlsContext::FromFiles(tls_cert, tls_key, !no_http2, &error);
  } else if (!tls_self_signed.empty()) {
    tls_context = TlsContext::SelfSigned(tls_self_signed, !no_http2, &error);
  }
  if (tls && tls_context == nullptr) return Usage(error);

  // A client that went away must not kill the server with SIGPIPE.
  signal(SIGPIPE, SIG_IGN);

  MockServer server(opt, &log, std::move(tls_context));
  const int port = server.Bind(&error);
  if (port < 0) {
    std::fprintf(stderr, "keel-mock-llm: error: %s\n", error.c_str());
    return 1;
  }
  const bool v6 = opt.host.find(':') != std::string::npos;
  std::printf("listening on %s://%s%s%s:%d\n", tls ? "https" : "http", v6 ? "[" : "",
              opt.host.c_str(), v6 ? "]" : "", port);
  std::fflush(stdout);

  // Serves until SIGTERM or SIGINT.
  const bool ok = server.Run();
  log.Close();
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace keel::mock

int main(int argc, char** argv) { return keel::mock::Main(argc, argv); }
