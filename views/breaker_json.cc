#include "views/breaker_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace keel {

std::optional<double> HalfOpenIn(const BreakerRow& row, double now) {
  const BreakerSnapshot& s = row.snapshot;
  if (s.state != BreakerState::kOpen) return std::nullopt;
  return std::max(0.0, s.opened_at + s.cooldown - now);
}

double RoundedHealth(const BreakerSnapshot& s) { return std::round(HealthPercent(s) * 10) / 10; }

void WriteBreakerFigures(JsonOut* out, const BreakerRow& row, double now) {
  const BreakerSnapshot& s = row.snapshot;
  const BreakerConfig& c = s.config;
  std::optional<double> half_open_in = HalfOpenIn(row, now);
  out->Key("next_probe_at").TimeOrNull(half_open_in ? s.opened_at + s.cooldown : 0);
  // The configuration of the last call through it; null until a keel that
  // records it has called.
  bool known = !c.key.empty();
  auto whole = [&](const char* name, int value) {
    out->Key(name);
    if (known) {
      out->Int(value);
    } else {
      out->Null();
    }
  };
  whole("failure_threshold", c.failures);
  out->Key("failure_rate");
  if (known && c.failure_rate > 0) {
    out->Double(c.failure_rate);
  } else {
    out->Null();
  }
  out->Key("window_s").Seconds(known ? std::optional<double>(c.window) : std::nullopt);
  whole("min_calls", c.min_calls);
  whole("probes_allowed", c.probes);
  whole("successes_needed", c.successes);
  // Calls and failures in the rate window, which is kept only for a
  // breaker with a failure rate.
  out->Key("window_calls");
  bool windowed = known && c.failure_rate > 0;
  int64_t calls = 0, failures = 0;
  for (const auto& [time, failed] : s.recent) {
    if (time < now - c.window) continue;
    ++calls;
    failures += failed;
  }
  if (windowed) {
    out->Int(calls);
  } else {
    out->Null();
  }
  out->Key("window_failures");
  if (windowed) {
    out->Int(failures);
  } else {
    out->Null();
  }
}

void WriteBreakersJson(JsonOut* out_ptr, const std::vector<BreakerRow>& rows, double now) {
  JsonOut& out = *out_ptr;
  out.BeginArray();
  for (const BreakerRow& row : rows) {
    const BreakerSnapshot& s = row.snapshot;
    out.BeginObject();
    out.Key("key").String(row.key);
    out.Key("state").String(BreakerStateName(s.state));
    out.Key("failures").Int(s.consecutive_failures);
    out.Key("calls").Int(s.calls);
    out.Key("failed").Int(s.failed);
    out.Key("health_percent").Raw(fmt::format("{}", RoundedHealth(s)));
    out.Key("half_open_in_s").Seconds(HalfOpenIn(row, now));
    out.Key("opened_at").TimeOrNull(s.opened_at);
    out.Key("cooldown_s").Seconds(s.cooldown);
    out.Key("updated_at").TimeOrNull(row.updated_at);
    WriteBreakerFigures(&out, row, now);
    // Half-open calls running now, each holding a slot its process renews.
    out.Key("probes");
    out.BeginArray();
    for (const ProbeLease& p : s.probes) {
      out.BeginObject();
      out.Key("pid").Int(p.owner.pid);
      out.Key("host").String(p.owner.host);
      out.Key("started_at").TimeOrNull(p.started_at);
      out.Key("renewed_at").TimeOrNull(p.renewed_at);
      out.EndObject();
    }
    out.EndArray();
    out.EndObject();
  }
  out.EndArray();
}

}  // namespace keel
