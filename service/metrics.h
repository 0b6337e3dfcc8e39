#pragma once
// Metrics: GET /metrics, the Prometheus text exposition (format 0.0.4) of
// what every process wrote to the database (service/metrics_state.h). Each
// scrape reads the events committed since the previous one by the global
// event cursor (Store::ReadEventsAfter) and folds them in; the first scrape
// after a start reads the history once. So the numbers count every process's
// work and are the same after a restart. Gauges (runs active, waiting,
// queued; breaker states; pending signals) are read from the store as it is.
//
// Scrapes arriving together share one reading: a request waits for the next
// reading that starts after it arrived (so it sees every event committed
// before it), and whoever finds none running does it. 100 scrapers at once
// cost about two readings each, not a hundred.
//
// Thread-safety: handlers run on any HTTP worker thread. mu_ guards the
// shared reading's bookkeeping; state_mu_ the folded state (held by the one
// thread reading).

#include <string>

#include "engine/clock.h"
#include "engine/mutex.h"
#include "engine/store.h"
#include "service/component.h"
#include "service/metrics_state.h"

namespace keel::service {

class Metrics final : public Component {
 public:
  // `store` and `clock` must outlive this component.
  Metrics(Store* store, Clock* clock, int batch = 5000);

  void Register(httplib::Server& server) override;

  // The exposition text after reading what is new; an error when the store
  // cannot be read.
  Result<std::string> Scrape();

 private:
  // One reading: folds in the new events, reads the gauges, renders.
  Result<std::string> Read();

  Store* const store_;
  Clock* const clock_;
  const int batch_;

  Mutex mu_;
  CondVar done_cv_;  // a reading finished
  bool reading_ GUARDED_BY(mu_) = false;
  int64_t started_ GUARDED_BY(mu_) = 0;  // readings started
  int64_t done_ GUARDED_BY(mu_) = 0;     // the number of the last reading finished
  Result<std::string> last_ GUARDED_BY(mu_) = std::string();  // its text

  Mutex state_mu_;
  int64_t cursor_ GUARDED_BY(state_mu_) = 0;  // every event up to it is folded in
  MetricsState state_ GUARDED_BY(state_mu_);
};

}  // namespace keel::service
