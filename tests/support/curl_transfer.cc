#include "tests/support/curl_transfer.h"

#include <algorithm>
#include <cctype>

namespace keel::testing {

Transfer::Transfer(int port, const std::string& ca_file, const std::string& path,
                   const std::string& body, long http_version) {
  easy_ = curl_easy_init();
  url_ = "https://127.0.0.1:" + std::to_string(port) + path;
  curl_easy_setopt(easy_, CURLOPT_URL, url_.c_str());
  curl_easy_setopt(easy_, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(easy_, CURLOPT_HTTP_VERSION, http_version);
  curl_easy_setopt(easy_, CURLOPT_PIPEWAIT, 1L);
  curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &Transfer::Collect);
  curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &body_);
  curl_easy_setopt(easy_, CURLOPT_HEADERFUNCTION, &Transfer::Collect);
  curl_easy_setopt(easy_, CURLOPT_HEADERDATA, &headers_);
  if (!body.empty()) {
    request_ = body;
    curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, request_.c_str());
    AddHeader("Content-Type: application/json");
  }
}

Transfer::~Transfer() {
  curl_easy_cleanup(easy_);
  curl_slist_free_all(request_headers_);
}

void Transfer::AddHeader(const std::string& header) {
  request_headers_ = curl_slist_append(request_headers_, header.c_str());
  curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, request_headers_);
}

double Transfer::Millis() const {
  curl_off_t us = 0;
  curl_easy_getinfo(easy_, CURLINFO_TOTAL_TIME_T, &us);
  return static_cast<double>(us) / 1000;
}

std::string Transfer::Header(std::string name) const {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  name = lower(name) + ":";
  const std::string all = lower(headers_);
  const size_t at = all.find("\n" + name);
  if (at == std::string::npos) return "";
  const size_t start = headers_.find_first_not_of(' ', at + 1 + name.size());
  return headers_.substr(start, headers_.find('\r', start) - start);
}

size_t Transfer::Collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

long Transfer::Info(CURLINFO info) const {
  long value = 0;
  curl_easy_getinfo(easy_, info, &value);
  return value;
}

Multi::Multi() : multi_(curl_multi_init()) {}

Multi::~Multi() {
  for (Transfer* t : added_) curl_multi_remove_handle(multi_, t->easy());
  curl_multi_cleanup(multi_);
}

void Multi::Add(Transfer* t) {
  curl_multi_add_handle(multi_, t->easy());
  added_.push_back(t);
}

void Multi::Remove(Transfer* t) {
  curl_multi_remove_handle(multi_, t->easy());
  added_.erase(std::find(added_.begin(), added_.end(), t));
}

bool Multi::Run(std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!added_.empty() && std::chrono::steady_clock::now() < give_up) Step();
  return added_.empty();
}

bool Multi::RunUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (!condition() && std::chrono::steady_clock::now() < give_up) Step();
  return condition();
}

void Multi::Step() {
  int running = 0;
  curl_multi_perform(multi_, &running);
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    auto it = std::find_if(added_.begin(), added_.end(),
                           [&](Transfer* t) { return t->easy() == msg->easy_handle; });
    Transfer* t = *it;
    t->result = msg->data.result;
    t->done = true;
    curl_multi_remove_handle(multi_, t->easy());
    added_.erase(it);
  }
  curl_multi_poll(multi_, nullptr, 0, 20, nullptr);
}

}  // namespace keel::testing
