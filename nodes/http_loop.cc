#include "nodes/http_loop.h"

#include <curl/curl.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace keel {
namespace {

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

std::string Trim(const std::string& text) {
  size_t begin = text.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(" \t\r\n");
  return text.substr(begin, end - begin + 1);
}

// A non-negative decimal number filling all of `text`; -1 otherwise.
double ParseSeconds(const std::string& text) {
  if (text.empty() || !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.')) {
    return -1;
  }
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(value) || value < 0) return -1;
  return value;
}

// The URL without user info, query or fragment: what error messages may show.
std::string RedactedUrl(const std::string& url) {
  std::string shown = url.substr(0, url.find_first_of("?#"));
  size_t authority = shown.find("://");
  authority = authority == std::string::npos ? 0 : authority + 3;
  size_t path = shown.find('/', authority);
  size_t at = shown.rfind('@', path == std::string::npos ? shown.size() : path);
  if (at != std::string::npos && at >= authority) shown.erase(authority, at + 1 - authority);
  return shown;
}

std::string FormatSeconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", seconds);
  return text;
}

}  // namespace

std::string HttpResponse::Header(const std::string& name) const {
  for (const auto& [key, value] : headers) {
    if (key == name) return value;
  }
  return "";
}

double HttpResponse::RetryAfter(double wall_now) const {
  std::string ms = Header("retry-after-ms");
  if (!ms.empty()) {
    double value = ParseSeconds(ms);
    if (value >= 0) return value / 1000;
  }
  std::string text = Header("retry-after");
  if (text.empty()) return -1;
  double delay = ParseSeconds(text);
  if (delay >= 0) return delay;
  time_t when = curl_getdate(text.c_str(), nullptr);
  if (when == -1) return -1;
  return std::max(0.0, static_cast<double>(when) - wall_now);
}

namespace {

// One request from Send to its completion. Created by Send, then owned by the
// loop's queue and, once added to the multi handle, by the I/O thread alone.
struct Transfer {
  uint64_t id = 0;
  HttpRequest request;
  HttpDone done;
  double sent_at = 0;         // Clock::Now() at Send
  uint64_t subscription = 0;  // on request.cancel; 0: none
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  long timeout_ms = 0;  // CURLOPT_TIMEOUT_MS; 0: none
  char error[CURL_ERROR_SIZE] = {};
  HttpResponse response;
};

size_t OnBody(char* data, size_t size, size_t count, void* user) {
  static_cast<Transfer*>(user)->response.body.append(data, size * count);
  return size * count;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    // A new response begins (after a 1xx): keep only its headers.
    transfer->response.headers.clear();
    return size * count;
  }
  size_t colon = line.find(':');
  if (colon != std::string::npos && colon > 0) {
    transfer->response.headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                                            Trim(line.substr(colon + 1)));
  }
  return size * count;
}

// Failures that a retry cannot fix.
bool IsPermanent(CURLcode code) {
  switch (code) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return true;
    default:
      return false;
  }
}

// State shared by Send, the I/O thread and the cancel callbacks, which may
// outlive the loop when a token is cancelled as a transfer ends. `multi` is
// set before any thread starts; every other field is guarded by `mu`.
struct LoopShared {
  std::mutex mu;
  // Callbacks wake it only while !stopping, under `mu`; it is freed after the
  // I/O thread joins.
  CURLM* multi = nullptr;
  std::deque<std::unique_ptr<Transfer>> queued;  // sent, not yet added to `multi`
  std::vector<uint64_t> cancelled;               // transfer ids whose token fired
  bool stopping = false;
  std::thread thread;  // started by the first Send
};

std::once_flag curl_init_once;

}  // namespace

// The I/O thread's side of the loop. `active` and the easy handles are touched
// only by the I/O thread; everything Send shares with it is in LoopShared.
struct HttpLoop::Impl {
  explicit Impl(Clock* c) : clock(c), shared(std::make_shared<LoopShared>()) {
    std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
    shared->multi = curl_multi_init();
    // Keep every connection of a large burst for reuse; no per-host limit.
    curl_multi_setopt(shared->multi, CURLMOPT_MAXCONNECTS, 1024L);
  }

  void Run();
  void Drain(std::deque<std::unique_ptr<Transfer>> queued);
  void Add(std::unique_ptr<Transfer> transfer);
  void Abort(uint64_t id);
  void Completed(CURL* easy, CURLcode code);
  void Finish(std::unique_ptr<Transfer> transfer, Status status);
  Status Failure(const Transfer& transfer, CURLcode code) const;

  Clock* const clock;
  const std::shared_ptr<LoopShared> shared;
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> next_id{0};
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> active;  // I/O thread only
};

void HttpLoop::Impl::Run() {
  for (;;) {
    std::deque<std::unique_ptr<Transfer>> queued;
    std::vector<uint64_t> cancelled;
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      queued.swap(shared->queued);
      cancelled.swap(shared->cancelled);
      stopping = shared->stopping;
    }
    if (stopping) return Drain(std::move(queued));
    for (auto& transfer : queued) Add(std::move(transfer));
    for (uint64_t id : cancelled) Abort(id);

    int running = 0;
    curl_multi_perform(shared->multi, &running);
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(shared->multi, &left)) {
      if (message->msg == CURLMSG_DONE) Completed(message->easy_handle, message->data.result);
    }
    // Sleeps until a socket is ready, curl's next timeout, or a wakeup.
    curl_multi_poll(shared->multi, nullptr, 0, 1000, nullptr);
  }
}

// Ends every transfer with kCancelled, including those that `done` callbacks
// send while the loop shuts down.
void HttpLoop::Impl::Drain(std::deque<std::unique_ptr<Transfer>> queued) {
  for (;;) {
    for (auto& transfer : queued) {
      Finish(std::move(transfer), Status::Error(ErrorKind::kCancelled, "HTTP loop shut down"));
    }
    while (!active.empty()) {
      auto transfer = std::move(active.begin()->second);
      active.erase(active.begin());
      Finish(std::move(transfer), Status::Error(ErrorKind::kCancelled, "HTTP loop shut down"));
    }
    std::lock_guard<std::mutex> lock(shared->mu);
    queued.clear();
    queued.swap(shared->queued);
    if (queued.empty()) return;
  }
}

void HttpLoop::Impl::Add(std::unique_ptr<Transfer> transfer) {
  const HttpRequest& request = transfer->request;
  if (request.cancel != nullptr && request.cancel->cancelled()) {
    return Finish(std::move(transfer), Status::Error(ErrorKind::kCancelled, "cancelled"));
  }
  if (request.deadline > 0) {
    double remaining = request.deadline - clock->Now();
    if (remaining <= 0) {
      double waited = clock->Now() - transfer->sent_at;
      return Finish(
          std::move(transfer),
          Status::Error(ErrorKind::kTimeout, request.method + " " + RedactedUrl(request.url) +
                                                 ": timed out after " + FormatSeconds(waited) +
                                                 " s before it was sent"));
    }
    transfer->timeout_ms = std::max(1L, static_cast<long>(std::ceil(remaining * 1000)));
  }

  CURL* easy = curl_easy_init();
  if (easy == nullptr) {
    return Finish(std::move(transfer),
                  Status::Error(ErrorKind::kTransient, "curl_easy_init failed"));
  }
  transfer->easy = easy;
  Transfer* t = transfer.get();
  curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
  if (t->timeout_ms > 0) curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, t->timeout_ms);
  if (request.connect_timeout > 0) {
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     std::max(1L, static_cast<long>(request.connect_timeout * 1000)));
  }

  if (request.method == "GET" && request.body.empty()) {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
  } else {
    if (!request.body.empty() || request.method == "POST") {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, request.body.c_str());
    }
    if (request.method != "POST") {
      curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    }
  }

  bool has_expect = false;
  for (const auto& [name, value] : request.headers) {
    has_expect = has_expect || Lower(name) == "expect";
    // "Name;" is how curl sends a header with an empty value.
    std::string line = value.empty() ? name + ";" : name + ": " + value;
    t->header_list = curl_slist_append(t->header_list, line.c_str());
  }
  // No "Expect: 100-continue" round trip before large bodies.
  if (!has_expect) t->header_list = curl_slist_append(t->header_list, "Expect:");
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->header_list);

  if (curl_multi_add_handle(shared->multi, easy) != CURLM_OK) {
    curl_easy_cleanup(easy);
    t->easy = nullptr;
    return Finish(std::move(transfer),
                  Status::Error(ErrorKind::kTransient, "curl_multi_add_handle failed"));
  }
  active.emplace(t->id, std::move(transfer));
}

void HttpLoop::Impl::Abort(uint64_t id) {
  auto it = active.find(id);
  if (it == active.end()) return;  // already finished
  auto transfer = std::move(it->second);
  active.erase(it);
  // Removing an unfinished transfer makes curl close its connection.
  Finish(std::move(transfer), Status::Error(ErrorKind::kCancelled, "cancelled"));
}

void HttpLoop::Impl::Completed(CURL* easy, CURLcode code) {
  Transfer* t = nullptr;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, &t);
  auto it = active.find(t->id);
  auto transfer = std::move(it->second);
  active.erase(it);
  Status result = code == CURLE_OK ? Status::Ok() : Failure(*transfer, code);
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  transfer->response.status = static_cast<int>(status);
  Finish(std::move(transfer), std::move(result));
}

Status HttpLoop::Impl::Failure(const Transfer& transfer, CURLcode code) const {
  std::string what = transfer.request.method + " " + RedactedUrl(transfer.request.url) + ": ";
  std::string detail = transfer.error[0] != '\0' ? transfer.error : curl_easy_strerror(code);
  if (code == CURLE_OPERATION_TIMEDOUT) {
    curl_off_t total_us = 0;
    curl_easy_getinfo(transfer.easy, CURLINFO_TOTAL_TIME_T, &total_us);
    // The request's deadline, or only the connect timeout before it?
    if (transfer.timeout_ms > 0 && total_us + 1000 >= transfer.timeout_ms * 1000) {
      double waited = clock->Now() - transfer.sent_at;
      return Status::Error(ErrorKind::kTimeout,
                           what + "timed out after " + FormatSeconds(waited) + " s");
    }
    return Status::Error(ErrorKind::kTransient, what + detail);
  }
  return Status::Error(IsPermanent(code) ? ErrorKind::kPermanent : ErrorKind::kTransient,
                       what + detail);
}

void HttpLoop::Impl::Finish(std::unique_ptr<Transfer> transfer, Status status) {
  if (transfer->easy != nullptr) {
    curl_multi_remove_handle(shared->multi, transfer->easy);
    curl_easy_cleanup(transfer->easy);
    transfer->easy = nullptr;
  }
  curl_slist_free_all(transfer->header_list);
  transfer->header_list = nullptr;
  if (transfer->subscription != 0) transfer->request.cancel->Unsubscribe(transfer->subscription);
  HttpResponse response = std::move(transfer->response);
  if (!status.ok()) {
    response.status = 0;
    response.headers.clear();
    response.body.clear();
  }
  response.transport = std::move(status);
  response.seconds = clock->Now() - transfer->sent_at;
  HttpDone done = std::move(transfer->done);
  transfer.reset();
  in_flight.fetch_sub(1, std::memory_order_acq_rel);
  try {
    done(std::move(response));
  } catch (...) {
    // `done` must not throw; an exception here would end the I/O thread and
    // every transfer with it.
  }
}

HttpLoop::HttpLoop(Clock* clock) : impl_(std::make_unique<Impl>(clock)) {}

HttpLoop::~HttpLoop() {
  std::thread thread;
  {
    std::lock_guard<std::mutex> lock(impl_->shared->mu);
    impl_->shared->stopping = true;
    thread = std::move(impl_->shared->thread);
  }
  if (thread.joinable()) {
    curl_multi_wakeup(impl_->shared->multi);
    thread.join();
  }
  curl_multi_cleanup(impl_->shared->multi);
}

void HttpLoop::Send(HttpRequest request, HttpDone done) {
  auto transfer = std::make_unique<Transfer>();
  transfer->id = impl_->next_id.fetch_add(1, std::memory_order_relaxed) + 1;
  transfer->sent_at = impl_->clock->Now();
  transfer->request = std::move(request);
  transfer->done = std::move(done);
  impl_->in_flight.fetch_add(1, std::memory_order_acq_rel);
  if (const CancelToken* cancel = transfer->request.cancel) {
    // Runs on the cancelling thread, possibly after the transfer or the loop
    // is gone: it only queues the id, under the shared lock, for the loop.
    std::weak_ptr<LoopShared> weak = impl_->shared;
    uint64_t id = transfer->id;
    transfer->subscription = cancel->Subscribe([weak, id] {
      auto shared = weak.lock();
      if (shared == nullptr) return;
      std::lock_guard<std::mutex> lock(shared->mu);
      if (shared->stopping) return;
      shared->cancelled.push_back(id);
      curl_multi_wakeup(shared->multi);
    });
  }
  LoopShared& shared = *impl_->shared;
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    shared.queued.push_back(std::move(transfer));
    if (!shared.thread.joinable()) {
      Impl* impl = impl_.get();
      shared.thread = std::thread([impl] { impl->Run(); });
    }
  }
  curl_multi_wakeup(shared.multi);
}

int64_t HttpLoop::in_flight() const { return impl_->in_flight.load(std::memory_order_acquire); }

}  // namespace keel
