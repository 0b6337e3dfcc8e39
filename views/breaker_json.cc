#include "views/breaker_json.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace keel {
namespace {

void NumberOrNull(JsonOut* out, const char* name, bool present, double value) {
  out->Key(name);
  if (present) {
    out->Double(value);
  } else {
    out->Null();
  }
}

void IntOrNull(JsonOut* out, const char* name, bool present, int64_t value) {
  out->Key(name);
  if (present) {
    out->Int(value);
  } else {
    out->Null();
  }
}

// The values the breaker works with now, as the object `effective`.
void WriteEffective(JsonOut* out, const BreakerSnapshot& s, double now) {
  const BreakerConfig& c = s.config;
  bool known = !c.key.empty();
  out->Key("effective");
  out->BeginObject();
  double rate = known ? EffectiveFailureRate(s, c) : 0;
  NumberOrNull(out, "failure_threshold_rate", rate > 0, rate);
  NumberOrNull(out, "learned_failure_rate", known && c.adaptive, LearnedFailureRate(s));
  out->Key("next_cooldown_s")
      .Seconds(known ? std::optional<double>(NextCooldown(s, c, now)) : std::nullopt);
  NumberOrNull(out, "ramp_share", known && s.state == BreakerState::kRecovering,
               RampShare(s, c, now));
  out->Key("reopens").Int(Reopens(s));
  out->EndObject();
}

}  // namespace

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
  IntOrNull(out, "failure_threshold", known, c.failures);
  NumberOrNull(out, "failure_rate", known && c.failure_rate > 0, c.failure_rate);
  out->Key("window_s").Seconds(known ? std::optional<double>(c.window) : std::nullopt);
  IntOrNull(out, "min_calls", known, c.min_calls);
  IntOrNull(out, "probes_allowed", known, c.probes);
  IntOrNull(out, "successes_needed", known, c.successes);
  IntOrNull(out, "window_calls_limit", known && c.window_calls > 0, c.window_calls);
  NumberOrNull(out, "slow_s", known && c.slow_seconds > 0, c.slow_seconds);
  NumberOrNull(out, "slow_rate", known && c.slow_rate > 0, c.slow_rate);
  NumberOrNull(out, "ramp_s", known && c.ramp > 0, c.ramp);
  NumberOrNull(out, "ramp_start", known && c.ramp > 0, c.ramp_start);
  out->Key("adaptive");
  if (known) {
    out->Raw(c.adaptive ? "true" : "false");
  } else {
    out->Null();
  }
  NumberOrNull(out, "margin", known && c.adaptive, c.margin);
  // The outcomes in the window now (its time span counted at `now`), which
  // is kept only for a breaker with a rate or a ramp.
  bool windowed = known && KeepsWindow(c);
  int64_t calls = 0, failures = 0, slow = 0;
  for (const WindowCall& call : s.recent) {
    if (c.window > 0 && call.at <= now - c.window) continue;
    ++calls;
    failures += (call.flags & WindowCall::kFailed) != 0;
    slow += (call.flags & WindowCall::kSlow) != 0;
  }
  IntOrNull(out, "window_calls", windowed, calls);
  IntOrNull(out, "window_failures", windowed, failures);
  IntOrNull(out, "window_slow", windowed, slow);
  WriteEffective(out, s, now);
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
    out.Key("slow").Int(s.slow);
    out.Key("timeouts").Int(s.timeouts);
    out.Key("rejected").Int(s.rejected);
    out.Key("consecutive_failures").Int(s.consecutive_failures);
    out.Key("consecutive_successes").Int(s.consecutive_successes);
    out.Key("last_success_at").TimeOrNull(s.last_success_at);
    out.Key("last_failure_at").TimeOrNull(s.last_failure_at);
    out.Key("health_percent").Raw(fmt::format("{}", RoundedHealth(s)));
    out.Key("half_open_in_s").Seconds(HalfOpenIn(row, now));
    out.Key("opened_at").TimeOrNull(s.opened_at);
    out.Key("cooldown_s").Seconds(s.cooldown);
    out.Key("updated_at").TimeOrNull(row.updated_at);
    WriteBreakerFigures(&out, row, now);
    // Its latest changes of state, oldest first.
    out.Key("transitions");
    out.BeginArray();
    for (const BreakerChange& change : s.transitions) {
      out.BeginObject();
      out.Key("at").TimeOrNull(change.at);
      out.Key("from").String(BreakerStateName(change.from));
      out.Key("to").String(BreakerStateName(change.to));
      out.EndObject();
    }
    out.EndArray();
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

void WriteBreakerSummaryJson(JsonOut* out, const BreakerSummary& summary) {
  out->BeginObject();
  out->Key("count").Int(summary.count);
  out->Key("states");
  out->BeginObject();
  for (int i = 0; i < kBreakerStates; ++i) {
    out->Key(BreakerStateName(static_cast<BreakerState>(i))).Int(summary.by_state[i]);
  }
  out->EndObject();
  out->Key("health_calls").Int(summary.health_calls);
  out->Key("health_failed").Int(summary.health_failed);
  out->Key("health_percent").Raw(fmt::format("{}", summary.health_percent));
  out->EndObject();
}

void WriteBreakersWithSummaryJson(JsonOut* out, const std::vector<BreakerRow>& rows, double now) {
  out->BeginObject();
  out->Key("summary");
  WriteBreakerSummaryJson(out, SummarizeBreakers(rows));
  out->Key("breakers");
  WriteBreakersJson(out, rows, now);
  out->EndObject();
}

}  // namespace keel
