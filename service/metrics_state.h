#pragma once
// MetricsState: the Prometheus metrics of `keel serve` (service/metrics.h),
// folded from the database's events one at a time (Add) and written in the
// text exposition format 0.0.4 (Render) together with what the store holds
// now (run counts, breakers). Counters and histograms only grow with the
// events read, so feeding it every event after cursor 0 once and then only
// the new ones gives the same numbers in every process, after any restart.
//
// Label values come from the events (error kinds, statuses, breaker keys,
// models, providers); each labelled family keeps at most kMaxSeries series,
// further values counting under "other". No run ids, no node names.
//
// Not thread-safe: its owner serializes calls.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/store.h"

namespace keel::service {

class MetricsState {
 public:
  static constexpr size_t kMaxSeries = 100;

  // Folds one event in.
  void Add(const EventRecord& event);
  // The exposition text: every family with # HELP and # TYPE. `now` is
  // wall seconds (for the age of the oldest queued run).
  std::string Render(const Store::StateCounts& counts, const std::vector<BreakerRow>& breakers,
                     double now) const;

  int64_t events() const { return events_; }

 private:
  // A counter family: labels (rendered `k="v",...`) to value.
  using Counter = std::map<std::string, double>;
  struct Histogram {
    std::vector<double> bounds;
    // labels to (bucket counts, one per bound then +Inf; sum)
    struct Series {
      std::vector<uint64_t> buckets;
      double sum = 0;
      uint64_t count = 0;
    };
    std::map<std::string, Series> series;
    void Observe(const std::string& labels, double value);
  };

  void AddOne(const std::string& kind, const std::string& node, const std::string& data_json,
              bool wrapped);
  // `labels` or, past kMaxSeries, the family's overflow series.
  static std::string Bounded(const Counter& family, std::string labels, const std::string& other);

  int64_t events_ = 0;
  Counter events_by_severity_;  // {kind, severity}
  Counter runs_started_;
  Counter runs_resumed_;
  Counter runs_finished_;  // {status}
  Counter attempts_;       // {outcome}
  Counter retries_;
  Counter timeouts_;        // {scope}
  Counter fallbacks_;       // {status}
  Counter hedges_;
  Counter retry_budget_exhausted_;
  Counter budget_exceeded_;
  Counter transitions_;  // {name, state}
  Counter rejected_;     // {name}
  Counter llm_calls_;    // {provider, outcome}
  Counter llm_cost_;     // {provider}
  Counter tool_calls_;   // {outcome}
  Histogram node_duration_{{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800}, {}};
  // The OpenTelemetry GenAI conventions' bucket boundaries.
  Histogram token_usage_{{1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                          16777216, 67108864},
                         {}};
  Histogram operation_duration_{
      {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92},
      {}};
};

}  // namespace keel::service
