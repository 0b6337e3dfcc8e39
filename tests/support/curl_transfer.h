#pragma once
// Transfer and Multi: libcurl client requests for tests that talk to a server
// over HTTPS (HTTP/2 chosen by ALPN, or HTTP/1.1), such as keel-mock-llm.
// Transfer is one request and what came back; Multi drives several Transfers
// together on one curl multi handle, so that those started at once share one
// HTTP/2 connection. Use from one thread.

#include <curl/curl.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/mock_llm_server.h"

namespace keel::testing {

// One libcurl transfer and what came back. Not thread-safe.
class Transfer {
 public:
  // A request to `path` of the server on `port` whose certificate is in
  // `ca_file` (a POST of `body` unless it is empty).
  Transfer(int port, const std::string& ca_file, const std::string& path, const std::string& body,
           long http_version = CURL_HTTP_VERSION_2TLS);
  Transfer(const MockLlmServer& mock, const std::string& path, const std::string& body,
           long http_version = CURL_HTTP_VERSION_2TLS)
      : Transfer(mock.port(), mock.ca_file(), path, body, http_version) {}
  ~Transfer();
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  void AddHeader(const std::string& header);
  void SetTimeout(long ms) { curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, ms); }

  CURL* easy() const { return easy_; }
  CURLcode result = CURLE_OK;
  bool done = false;

  const std::string& body() const { return body_; }
  long Status() const { return Info(CURLINFO_RESPONSE_CODE); }
  long HttpVersion() const { return Info(CURLINFO_HTTP_VERSION); }
  long Connects() const { return Info(CURLINFO_NUM_CONNECTS); }
  long LocalPort() const { return Info(CURLINFO_LOCAL_PORT); }
  double Millis() const;
  // The response header `name` (any case), or "".
  std::string Header(std::string name) const;

 private:
  static size_t Collect(char* data, size_t size, size_t n, void* out);
  long Info(CURLINFO info) const;

  CURL* easy_ = nullptr;
  std::string url_;
  std::string request_;
  curl_slist* request_headers_ = nullptr;
  std::string body_;
  std::string headers_;
};

// A curl multi handle driving transfers together: with CURLOPT_PIPEWAIT,
// those started at once share one HTTP/2 connection. Not thread-safe.
class Multi {
 public:
  Multi();
  ~Multi();
  Multi(const Multi&) = delete;
  Multi& operator=(const Multi&) = delete;

  void Add(Transfer* t);
  // Takes `t` away before it ends: curl resets its stream.
  void Remove(Transfer* t);
  // Drives the transfers until all have ended or `timeout` passed; true when all ended.
  bool Run(std::chrono::milliseconds timeout);
  // Drives the transfers until `condition` holds or `timeout` passed.
  bool RunUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

 private:
  void Step();

  CURLM* multi_;
  std::vector<Transfer*> added_;
};

}  // namespace keel::testing
