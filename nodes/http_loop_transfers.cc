// HttpLoop's transfers on the I/O thread (see http_loop.h): the multi
// handle, curl's sockets in the epoll set, adding a queued transfer,
// aborting a cancelled one, and finishing each with its `done`. The loop
// that drives them is in http_loop.cc.

#include <curl/curl.h>
#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <string>
#include <utility>

#include "nodes/curl_library.h"
#include "nodes/http_loop.h"
#include "nodes/http_loop_impl.h"
#include "nodes/http_transfer.h"

namespace keel {
namespace {

constexpr size_t kIdleHandles = 64;  // reset easy handles kept for reuse

}  // namespace

// libcurl is loaded (curl_library.h) and the multi handle made by the first
// transfer, so that a loop used only for timers never loads it.
Status HttpLoop::Impl::OpenMulti() {
  if (multi != nullptr) return Status::Ok();
  std::string error;
  if (!LoadCurl(&error)) return Status::Error(ErrorKind::kPermanent, error);
  multi = curl_multi_init();
  if (multi == nullptr) return Status::Error(ErrorKind::kTransient, "curl_multi_init failed");
  // Keep every connection of a large burst for reuse; no per-host limit.
  curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 1024L);
  // Over HTTP/2 a whole burst shares one connection, as far as the server
  // allows; curl's own cap is 100 streams.
  curl_multi_setopt(multi, CURLMOPT_MAX_CONCURRENT_STREAMS, 1000L);
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, OnSocket);
  curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, OnTimer);
  curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  return Status::Ok();
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
    MutexLock lock(&shared->mu);
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
  if (Status scheme = CheckScheme(request); !scheme.ok()) {
    return Finish(std::move(transfer), std::move(scheme));
  }
  if (request.deadline > 0) {
    double remaining = request.deadline - clock->Now();
    if (remaining <= 0) {
      double waited = clock->Now() - transfer->sent_at;
      return Finish(std::move(transfer), TimedOutBeforeSent(request, waited));
    }
    transfer->timeout_ms = std::max(1L, static_cast<long>(std::ceil(remaining * 1000)));
  }

  if (Status opened = OpenMulti(); !opened.ok()) return Finish(std::move(transfer), opened);
  CURL* easy = idle.empty() ? curl_easy_init() : idle.back();
  if (!idle.empty()) idle.pop_back();
  if (easy == nullptr) {
    return Finish(std::move(transfer),
                  Status::Error(ErrorKind::kTransient, "curl_easy_init failed"));
  }
  transfer->easy = easy;
  PrepareEasy(easy, transfer.get());
  if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
    return Finish(std::move(transfer),
                  Status::Error(ErrorKind::kTransient, "curl_multi_add_handle failed"));
  }
  uint64_t id = transfer->id;
  active.emplace(id, std::move(transfer));
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
  Status result = code == CURLE_OK
                      ? Status::Ok()
                      : TransferFailure(*transfer, code, clock->Now() - transfer->sent_at);
  long status = 0;
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  transfer->response.status = static_cast<int>(status);
  Finish(std::move(transfer), std::move(result));
}

void HttpLoop::Impl::Finish(std::unique_ptr<Transfer> transfer, Status status) {
  if (CURL* easy = transfer->easy) {
    // Removing an unfinished transfer makes curl close its connection (over
    // HTTP/2, reset its stream); a finished one's connection stays in the
    // multi handle's cache for reuse.
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

}  // namespace keel
