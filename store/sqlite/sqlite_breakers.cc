#include "store/sqlite/sqlite_breakers.h"

#include <string_view>

#include "engine/breaker_codec.h"

namespace keel::sqlite {

void ReadBreaker(const Statement& row, int first, BreakerSnapshot* snapshot) {
  snapshot->state = BreakerState::kClosed;
  ParseBreakerState(row.Text(first), &snapshot->state);
  snapshot->consecutive_failures = static_cast<int>(row.Int(first + 1));
  // probes_out (first + 2) repeats the length of the probe list.
  snapshot->probe_successes = static_cast<int>(row.Int(first + 3));
  snapshot->opened_at = row.Real(first + 4);
  snapshot->cooldown = row.Real(first + 5);
  snapshot->probes = DecodeBreakerProbes(row.Text(first + 6));
  snapshot->calls = row.Int(first + 7);
  snapshot->failed = row.Int(first + 8);
  snapshot->recent = DecodeBreakerWindow(row.Text(first + 9));
  snapshot->config = DecodeBreakerConfig(row.Text(first + 10));
  DecodeBreakerStats(row.Text(first + 11), snapshot);
}

void BindBreaker(Statement* stmt, int first, const BreakerSnapshot& snapshot, std::string* json) {
  *json = EncodeBreakerWindow(snapshot.recent);
  const size_t window_size = json->size();
  *json += EncodeBreakerProbes(snapshot.probes);
  const size_t probes_end = json->size();
  *json += EncodeBreakerConfig(snapshot.config);
  const size_t config_end = json->size();
  *json += EncodeBreakerStats(snapshot);
  const std::string_view window = std::string_view(*json).substr(0, window_size);
  const std::string_view probes =
      std::string_view(*json).substr(window_size, probes_end - window_size);
  const std::string_view config =
      std::string_view(*json).substr(probes_end, config_end - probes_end);
  const std::string_view stats = std::string_view(*json).substr(config_end);
  stmt->Bind(first, BreakerStateName(snapshot.state))
      .Bind(first + 1, snapshot.consecutive_failures)
      .Bind(first + 2, static_cast<int64_t>(snapshot.probes.size()))
      .Bind(first + 3, snapshot.probe_successes)
      .Bind(first + 4, snapshot.opened_at)
      .Bind(first + 5, snapshot.cooldown)
      .Bind(first + 6, probes)
      .Bind(first + 7, snapshot.calls)
      .Bind(first + 8, snapshot.failed)
      .Bind(first + 9, window)
      .Bind(first + 10, config)
      .Bind(first + 11, stats);
}

}  // namespace keel::sqlite
