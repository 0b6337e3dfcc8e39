#include "service/metrics.h"

#include <httplib.h>

#include "service/json_response.h"

namespace keel::service {

Metrics::Metrics(Store* store, Clock* clock, int batch)
    : store_(store), clock_(clock), batch_(batch) {}

void Metrics::Register(httplib::Server& server) {
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& response) {
    auto text = Scrape();
    if (!text.ok()) {
      JsonError(response, 503, "reading the database: " + text.status().message());
      return;
    }
    response.set_content(std::move(text).value(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

Result<std::string> Metrics::Scrape() {
  MutexLock lock(&mu_);
  // A reading already under way may have missed what was committed just
  // before this request: wait for the next one.
  const int64_t wanted = started_ + 1;
  while (done_ < wanted) {
    if (reading_) {
      done_cv_.Wait(&mu_);
      continue;
    }
    reading_ = true;
    const int64_t mine = ++started_;
    lock.Unlock();
    Result<std::string> text = Read();
    lock.Lock();
    last_ = std::move(text);
    done_ = mine;
    reading_ = false;
    done_cv_.SignalAll();
  }
  return last_;
}

Result<std::string> Metrics::Read() {
  MutexLock lock(&state_mu_);
  for (;;) {
    auto events = store_->ReadEventsAfter(cursor_, "", batch_);
    if (!events.ok()) return events.status();
    for (const Store::CursorEvent& event : *events) {
      state_.Add(event.event);
      cursor_ = event.cursor;
    }
    if (events->size() < static_cast<size_t>(batch_)) break;
  }
  auto counts = store_->CountState();
  if (!counts.ok()) return counts.status();
  auto breakers = store_->ListBreakers();
  if (!breakers.ok()) return breakers.status();
  return state_.Render(*counts, *breakers, clock_->WallNow());
}

}  // namespace keel::service
