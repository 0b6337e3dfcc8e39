#include "nodes/http_loop.h"

#include <curl/curl.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string_view>
#include <system_error>
#include <thread>
#include <unordered_map>

namespace keel {
namespace {

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

using Steady = std::chrono::steady_clock;

constexpr int kMaxEvents = 256;      // epoll events taken per wake-up
constexpr size_t kIdleHandles = 64;  // reset easy handles kept for reuse

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
  static_cast<Transfer*>(user)->response.AddHeaderLine(std::string_view(data, size * count));
  return size * count;
}

// Failures that a retry cannot fix.
bool IsPermanent(CURLcode code) {
  return code == CURLE_URL_MALFORMAT || code == CURLE_UNSUPPORTED_PROTOCOL ||
         code == CURLE_NOT_BUILT_IN || code == CURLE_BAD_FUNCTION_ARGUMENT;
}

// State shared by Send, the I/O thread and the cancel callbacks, which may
// outlive the loop when a token is cancelled as a transfer ends. The
// descriptors are set before any thread starts and closed with the last
// owner; `awake` is atomic; every other field is guarded by `mu`.
struct LoopShared {
  ~LoopShared() {
    for (int fd : {wake_fd, epoll_fd}) {
      if (fd >= 0) close(fd);
    }
  }

  int wake_fd = -1;   // eventfd that wakes the I/O thread
  int epoll_fd = -1;  // the I/O thread's: wake_fd and the sockets curl asks for
  // True while the I/O thread is bound to look at `queued` and `cancelled`
  // before it next sleeps; whoever turns it true writes `wake_fd`. So a burst
  // of Sends costs one write and one wake-up, not one each.
  std::atomic<bool> awake{true};
  std::mutex mu;
  std::vector<std::unique_ptr<Transfer>> queued;  // sent, not yet added to the multi handle
  std::vector<uint64_t> cancelled;                // transfer ids whose token fired
  bool stopping = false;
  std::thread thread;  // started by the first Send
};

// Call after queueing work under `mu`, not holding it.
void Wake(LoopShared& shared) {
  if (shared.awake.exchange(true, std::memory_order_acq_rel)) return;
  uint64_t one = 1;
  // Fails only when the counter is full, and then the loop is being woken.
  [[maybe_unused]] ssize_t written = write(shared.wake_fd, &one, sizeof one);
}

std::once_flag curl_init_once;

}  // namespace

// The I/O thread's side of the loop: curl's multi_socket API over epoll, so
// that a wake-up costs what the ready sockets need, not a walk over every
// transfer. `multi` is set before any thread starts; every other field but
// the atomics is touched only by the I/O thread (and by the destructor once
// it has joined it).
struct HttpLoop::Impl {
  explicit Impl(Clock* c);
  ~Impl() {
    for (CURL* easy : idle) curl_easy_cleanup(easy);
    curl_multi_cleanup(multi);  // may still call OnSocket: `shared` is still here
  }

  void Run();
  void Drain(std::vector<std::unique_ptr<Transfer>> queued);
  void Add(std::unique_ptr<Transfer> transfer);
  void Abort(uint64_t id);
  // Removes transfer `id` from `active`; null when it is not there.
  std::unique_ptr<Transfer> Take(uint64_t id) {
    auto it = active.find(id);
    if (it == active.end()) return nullptr;
    auto transfer = std::move(it->second);
    active.erase(it);
    return transfer;
  }
  void Completed(CURL* easy, CURLcode code);
  void Finish(std::unique_ptr<Transfer> transfer, Status status);
  Status Failure(const Transfer& transfer, CURLcode code) const;
  static int OnSocket(CURL* easy, curl_socket_t socket, int what, void* user, void* registered);

  // Runs inside curl calls, which it must not call back: it only notes the time.
  static int OnTimer(CURLM*, long timeout_ms, void* user) {
    auto* impl = static_cast<Impl*>(user);
    impl->timer_armed = timeout_ms >= 0;
    impl->timer_due = Steady::now() + std::chrono::milliseconds(std::max(0L, timeout_ms));
    return 0;
  }
  // epoll_wait's timeout: curl's timer, rounded up so that curl is not called
  // before its time; -1 when there is none.
  int WaitMs() const {
    if (!timer_armed) return -1;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(timer_due - Steady::now()).count();
    return static_cast<int>(std::clamp<decltype(left)>(left, 0, INT_MAX));
  }
  void RunTimer() {
    if (!timer_armed || Steady::now() < timer_due) return;
    timer_armed = false;  // curl sets the next one through OnTimer
    int running = 0;
    curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  }
  void ReadCompleted() {
    int left = 0;
    while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
      if (message->msg == CURLMSG_DONE) Completed(message->easy_handle, message->data.result);
    }
  }

  Clock* const clock;
  const std::shared_ptr<LoopShared> shared;
  CURLM* multi = nullptr;  // when null, every transfer fails in Add
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> next_id{0};
  std::unordered_map<uint64_t, std::unique_ptr<Transfer>> active;  // in the multi handle
  std::vector<CURL*> idle;   // reset easy handles, up to kIdleHandles
  bool timer_armed = false;  // curl asked to be called at `timer_due`
  Steady::time_point timer_due;
};

// Throws std::system_error when the process is out of file descriptors.
HttpLoop::Impl::Impl(Clock* c) : clock(c), shared(std::make_shared<LoopShared>()) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  shared->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  shared->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = shared->wake_fd;
  if (shared->wake_fd < 0 || shared->epoll_fd < 0 ||
      epoll_ctl(shared->epoll_fd, EPOLL_CTL_ADD, shared->wake_fd, &wake) != 0) {
    throw std::system_error(errno, std::generic_category(), "HttpLoop: epoll or eventfd");
  }
  multi = curl_multi_init();
  // Keep every connection of a large burst for reuse; no per-host limit.
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 1024L);
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, OnSocket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, OnTimer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
}

// Keeps epoll's interest in `socket` what curl asks for. `registered` (set
// with curl_multi_assign) tells a first ADD from a MOD; the errno fallback
// covers a descriptor number closed and reused meanwhile.
int HttpLoop::Impl::OnSocket(CURL*, curl_socket_t socket, int what, void* user, void* registered) {
  auto* impl = static_cast<Impl*>(user);
  int epoll_fd = impl->shared->epoll_fd;
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, socket, nullptr);
    return 0;
  }
  epoll_event event{};
  event.events = ((what & CURL_POLL_IN) ? uint32_t{EPOLLIN} : 0) |
                 ((what & CURL_POLL_OUT) ? uint32_t{EPOLLOUT} : 0);
  event.data.fd = socket;
  if (epoll_ctl(epoll_fd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, socket, &event) != 0 &&
      (errno == ENOENT || errno == EEXIST)) {
    epoll_ctl(epoll_fd, errno == ENOENT ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, socket, &event);
  }
  if (registered == nullptr) curl_multi_assign(impl->multi, socket, impl);
  return 0;
}

void HttpLoop::Impl::Run() {
  epoll_event events[kMaxEvents];
  // Swapped with LoopShared's, so that both keep their capacity.
  std::vector<std::unique_ptr<Transfer>> queued;
  std::vector<uint64_t> cancelled;
  int wait_ms = 0;
  for (;;) {
    int count = epoll_wait(shared->epoll_fd, events, kMaxEvents, wait_ms);
    shared->awake.store(true, std::memory_order_relaxed);
    for (int i = 0; i < count; ++i) {
      int fd = events[i].data.fd;
      uint32_t ready = events[i].events;
      if (fd == shared->wake_fd) {
        uint64_t value;
        [[maybe_unused]] ssize_t got = read(fd, &value, sizeof value);
        continue;
      }
      int running = 0;
      curl_multi_socket_action(multi, fd,
                               ((ready & EPOLLIN) ? CURL_CSELECT_IN : 0) |
                                   ((ready & EPOLLOUT) ? CURL_CSELECT_OUT : 0) |
                                   ((ready & (EPOLLERR | EPOLLHUP)) ? CURL_CSELECT_ERR : 0),
                               &running);
    }
    RunTimer();
    ReadCompleted();

    // Clear `awake` before looking, so that a Send after the look wakes us.
    shared->awake.store(false, std::memory_order_seq_cst);
    queued.clear();
    cancelled.clear();
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      queued.swap(shared->queued);
      cancelled.swap(shared->cancelled);
      stopping = shared->stopping;
    }
    if (stopping) return Drain(std::move(queued));
    if (queued.empty() && cancelled.empty()) {
      wait_ms = WaitMs();
      continue;
    }
    shared->awake.store(true, std::memory_order_relaxed);
    for (auto& transfer : queued) Add(std::move(transfer));
    for (uint64_t id : cancelled) Abort(id);
    RunTimer();  // starts the new transfers: curl set its timer to 0
    ReadCompleted();
    wait_ms = 0;  // look at the queues again, after the sockets
  }
}

// Ends every transfer with kCancelled, including those that `done` callbacks
// send while the loop shuts down.
void HttpLoop::Impl::Drain(std::vector<std::unique_ptr<Transfer>> queued) {
  for (;;) {
    for (auto& transfer : queued) {
      Finish(std::move(transfer), Status::Error(ErrorKind::kCancelled, "HTTP loop shut down"));
    }
    while (!active.empty()) {
      Finish(Take(active.begin()->first),
             Status::Error(ErrorKind::kCancelled, "HTTP loop shut down"));
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

  CURL* easy = idle.empty() ? curl_easy_init() : idle.back();
  if (!idle.empty()) idle.pop_back();
  if (easy == nullptr) {
    return Finish(std::move(transfer),
                  Status::Error(ErrorKind::kTransient, "curl_easy_init failed"));
  }
  transfer->easy = easy;
  Transfer* t = transfer.get();
  curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
  curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  // Replies are a few KiB; a 4 KiB receive buffer instead of curl's 16 KiB
  // means fewer fresh pages for a burst of new handles.
  curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, 4096L);
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
  std::string line;
  for (const auto& [name, value] : request.headers) {
    has_expect = has_expect || strcasecmp(name.c_str(), "expect") == 0;
    // "Name;" is how curl sends a header with an empty value.
    line.assign(name).append(value.empty() ? ";" : ": ").append(value);
    t->header_list = curl_slist_append(t->header_list, line.c_str());
  }
  // No "Expect: 100-continue" round trip before large bodies.
  if (!has_expect) t->header_list = curl_slist_append(t->header_list, "Expect:");
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->header_list);

  if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
    return Finish(std::move(transfer),
                  Status::Error(ErrorKind::kTransient, "curl_multi_add_handle failed"));
  }
  active.emplace(t->id, std::move(transfer));
}

void HttpLoop::Impl::Abort(uint64_t id) {
  auto transfer = Take(id);
  if (transfer == nullptr) return;  // already finished
  Finish(std::move(transfer), Status::Error(ErrorKind::kCancelled, "cancelled"));
}

void HttpLoop::Impl::Completed(CURL* easy, CURLcode code) {
  Transfer* t = nullptr;
  curl_easy_getinfo(easy, CURLINFO_PRIVATE, &t);
  auto transfer = Take(t->id);
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
  if (CURL* easy = transfer->easy) {
    // Removing an unfinished transfer makes curl close its connection; a
    // finished one's stays in the multi handle's cache for reuse.
    curl_multi_remove_handle(multi, easy);
    if (idle.size() < kIdleHandles) {
      curl_easy_reset(easy);  // also drops its pointers into `transfer`
      idle.push_back(easy);
    } else {
      curl_easy_cleanup(easy);
    }
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
    Wake(*impl_->shared);
    thread.join();
  }
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
      {
        std::lock_guard<std::mutex> lock(shared->mu);
        if (shared->stopping) return;
        shared->cancelled.push_back(id);
      }
      Wake(*shared);
    });
  }
  LoopShared& shared = *impl_->shared;
  {
    std::lock_guard<std::mutex> lock(shared.mu);
    shared.queued.push_back(std::move(transfer));
    // Once stopping, the I/O thread is draining: this Send came from a `done`.
    if (!shared.thread.joinable() && !shared.stopping) {
      Impl* impl = impl_.get();
      shared.thread = std::thread([impl] { impl->Run(); });
    }
  }
  Wake(shared);
}

int64_t HttpLoop::in_flight() const { return impl_->in_flight.load(std::memory_order_acquire); }

}  // namespace keel
