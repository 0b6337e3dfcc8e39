#include "service/metrics_state.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string_view>

#include "engine/event_severity.h"
#include "engine/json_members.h"

namespace keel::service {
namespace {

// A label value as the exposition format quotes it.
std::string Escape(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Label(std::string_view name, std::string_view value) {
  return std::string(name) + "=\"" + Escape(value) + "\"";
}

std::string Join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return std::string(a) + "," + std::string(b);
}

std::string Number(double value) {
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (std::isnan(value)) return "NaN";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.15g", value);
  return buf;
}

void Header(std::string* out, const char* name, const char* type, const char* help) {
  *out += "# HELP ";
  *out += name;
  *out += " ";
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += " ";
  *out += type;
  *out += "\n";
}

void Sample(std::string* out, std::string_view name, const std::string& labels, double value) {
  *out += name;
  if (!labels.empty()) *out += "{" + labels + "}";
  *out += " " + Number(value) + "\n";
}

// A family of counters or gauges; `seed` labels are written as 0 when absent.
void Write(std::string* out, const char* name, const char* type, const char* help,
           const std::map<std::string, double>& family, std::vector<std::string> seed = {}) {
  Header(out, name, type, help);
  std::map<std::string, double> all = family;
  for (const std::string& labels : seed) all.emplace(labels, 0);
  if (all.empty()) all.emplace("", 0);
  for (const auto& [labels, value] : all) Sample(out, name, labels, value);
}

bool IsTerminal(std::string_view status) {
  return status == "succeeded" || status == "failed" || status == "degraded" ||
         status == "cancelled";
}

}  // namespace

void MetricsState::Histogram::Observe(const std::string& labels, double value) {
  if (!std::isfinite(value)) return;
  std::string key = labels;
  if (series.size() >= kMaxSeries && !series.count(key)) key = "other=\"true\"";
  Series& s = series[key];
  if (s.buckets.empty()) s.buckets.assign(bounds.size() + 1, 0);
  size_t i = std::lower_bound(bounds.begin(), bounds.end(), value) - bounds.begin();
  ++s.buckets[i];
  s.sum += value;
  ++s.count;
}

std::string MetricsState::Bounded(const Counter& family, std::string labels,
                                  const std::string& other) {
  if (family.size() < kMaxSeries || family.count(labels)) return labels;
  return other;
}

void MetricsState::Add(const EventRecord& event) {
  ++events_;
  // Kinds the severity table does not know count as "other": labels stay
  // a known, small set whatever a database holds.
  std::string kind = IsKnownEventKind(event.kind) ? event.kind : "other";
  std::string severity(SeverityName(EventSeverity(event.kind, event.data_json)));
  std::string labels = Join(Label("kind", kind), Label("severity", severity));
  events_by_severity_[Bounded(events_by_severity_, labels,
                              Join(Label("kind", "other"), Label("severity", severity)))] += 1;
  AddOne(event.kind, event.node, event.data_json, false);
}

void MetricsState::AddOne(const std::string& kind, const std::string& node,
                          const std::string& data_json, bool wrapped) {
  rapidjson::Document doc;
  doc.Parse(data_json.c_str(), data_json.size());
  if (doc.HasParseError() || !doc.IsObject()) doc.SetObject();
  const rapidjson::Value& data = doc;
  if (kind == "fallback_event" && !wrapped) {
    // A fallback workflow's event, wrapped for the node it stands in for.
    const rapidjson::Value* inner = JsonMember(data, "data");
    std::string inner_json = "{}";
    if (inner && inner->IsObject()) {
      rapidjson::Document copy;
      copy.CopyFrom(*inner, copy.GetAllocator());
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
      copy.Accept(writer);
      inner_json.assign(buf.GetString(), buf.GetSize());
    }
    AddOne(JsonText(data, "event"), node, inner_json, true);
    return;
  }
  if (kind == "run_started") {
    if (!wrapped) runs_started_[""] += 1;
  } else if (kind == "run_resumed") {
    if (!wrapped) runs_resumed_[""] += 1;
  } else if (kind == "run_finished") {
    std::string status = JsonText(data, "status");
    if (!wrapped && IsTerminal(status)) runs_finished_[Label("status", status)] += 1;
  } else if (kind == "run_cancelled") {
    if (!wrapped) runs_finished_[Label("status", "cancelled")] += 1;
  } else if (kind == "node_succeeded") {
    attempts_[Label("outcome", "succeeded")] += 1;
  } else if (kind == "attempt_failed") {
    std::string error = JsonText(data, "kind");
    const char* outcome = error == "timeout" ? "timeout" : error == "cancelled" ? "cancelled" : "failed";
    attempts_[Label("outcome", outcome)] += 1;
    if (error == "timeout") timeouts_[Label("scope", "attempt")] += 1;
  } else if (kind == "circuit_rejected") {
    attempts_[Label("outcome", "rejected")] += 1;
    std::string name = Label("name", JsonText(data, "key"));
    rejected_[Bounded(rejected_, name, Label("name", "other"))] += 1;
  } else if (kind == "total_timeout") {
    timeouts_[Label("scope", "total")] += 1;
  } else if (kind == "retry_scheduled") {
    retries_[""] += 1;
  } else if (kind == "retry_budget_exhausted") {
    retry_budget_exhausted_[""] += 1;
  } else if (kind == "budget_exceeded") {
    budget_exceeded_[""] += 1;
  } else if (kind == "fallback_finished") {
    std::string status = Label("status", JsonText(data, "status"));
    fallbacks_[Bounded(fallbacks_, status, Label("status", "other"))] += 1;
  } else if (kind == "hedge_started") {
    hedges_[""] += 1;
  } else if (kind == "breaker_opened" || kind == "breaker_reopened" ||
             kind == "breaker_half_open" || kind == "breaker_recovering" ||
             kind == "breaker_closed") {
    const char* state = kind == "breaker_half_open"    ? "half_open"
                        : kind == "breaker_recovering" ? "recovering"
                        : kind == "breaker_closed"     ? "closed"
                                                       : "open";
    std::string labels = Join(Label("name", JsonText(data, "key")), Label("state", state));
    transitions_[Bounded(transitions_, labels, Join(Label("name", "other"), Label("state", state)))] +=
        1;
  } else if (kind == "tool_call") {
    const rapidjson::Value* ok = JsonMember(data, "ok");
    tool_calls_[Label("outcome", ok && ok->IsBool() && ok->GetBool() ? "ok" : "error")] += 1;
  } else if (kind == "llm_call") {
    std::string provider = JsonText(data, "provider");
    std::string outcome = JsonText(data, "outcome");
    if (outcome.empty()) outcome = "ok";
    std::string call = Join(Label("provider", provider), Label("outcome", outcome));
    llm_calls_[Bounded(llm_calls_, call, Join(Label("provider", "other"), Label("outcome", outcome)))] +=
        1;
    double cost = JsonNumber(data, "cost", std::nan(""));
    std::string by_provider = Label("provider", provider);
    if (std::isfinite(cost)) llm_cost_[Bounded(llm_cost_, by_provider, Label("provider", "other"))] += cost;
    std::string model = Join(Label("gen_ai_operation_name", "chat"),
                             Label("gen_ai_request_model", JsonText(data, "model")));
    token_usage_.Observe(Join(model, Label("gen_ai_token_type", "input")),
                         JsonNumber(data, "prompt_tokens", std::nan("")));
    token_usage_.Observe(Join(model, Label("gen_ai_token_type", "output")),
                         JsonNumber(data, "completion_tokens", std::nan("")));
    operation_duration_.Observe(outcome == "ok" ? model : Join(model, Label("error_type", outcome)),
                                JsonNumber(data, "seconds", std::nan("")));
  }
  if (kind.starts_with("node_") && kind != "node_started" && kind != "node_waiting") {
    node_duration_.Observe(Label("status", kind.substr(5)), JsonNumber(data, "seconds", std::nan("")));
  }
}

std::string MetricsState::Render(const Store::StateCounts& counts,
                                 const std::vector<BreakerRow>& breakers, double now) const {
  std::string out;
  out.reserve(16384);
  Write(&out, "keel_runs_started_total", "counter", "Runs started (not resumes).", runs_started_);
  Write(&out, "keel_runs_resumed_total", "counter", "Resumes of runs.", runs_resumed_);
  Write(&out, "keel_runs_finished_total", "counter", "Runs finished, by final status.",
        runs_finished_,
        {Label("status", "succeeded"), Label("status", "failed"), Label("status", "degraded"),
         Label("status", "cancelled")});
  std::map<std::string, double> by_status;
  for (const auto& [status, n] : counts.runs) by_status[status] = static_cast<double>(n);
  auto runs = [&](const char* status) {
    auto it = by_status.find(status);
    return std::map<std::string, double>{{"", it == by_status.end() ? 0.0 : it->second}};
  };
  Write(&out, "keel_runs_active", "gauge", "Runs recorded running now.", runs("running"));
  Write(&out, "keel_runs_waiting", "gauge", "Runs parked on a signal or a timer.", runs("waiting"));
  Write(&out, "keel_runs_queued", "gauge", "Runs queued and not started yet.", runs("queued"));
  Write(&out, "keel_runs_interrupted", "gauge", "Runs interrupted and not resumed yet.",
        runs("interrupted"));
  double oldest = counts.oldest_queued_at > 0 ? std::max(0.0, now - counts.oldest_queued_at) : 0;
  Write(&out, "keel_runs_queued_oldest_age_seconds", "gauge",
        "How long the oldest queued run has waited; 0 when none waits.", {{"", oldest}});
  Write(&out, "keel_signals_pending", "gauge", "Signals sent and not taken by a wait yet.",
        {{"", static_cast<double>(counts.signals_pending)}});

  Write(&out, "keel_node_attempts_total", "counter",
        "Node attempts, by outcome (rejected: refused by an open circuit breaker).", attempts_,
        {Label("outcome", "succeeded"), Label("outcome", "failed"), Label("outcome", "timeout"),
         Label("outcome", "cancelled"), Label("outcome", "rejected")});
  Header(&out, "keel_node_duration_seconds", "histogram",
         "Node durations from start to finish, all attempts and backoff included, by final status.");
  auto histogram = [&out](const char* name, const Histogram& h) {
    for (const auto& [labels, s] : h.series) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i <= h.bounds.size(); ++i) {
        cumulative += s.buckets[i];
        std::string le = Label("le", i < h.bounds.size() ? Number(h.bounds[i]) : "+Inf");
        Sample(&out, std::string(name) + "_bucket", Join(labels, le), static_cast<double>(cumulative));
      }
      Sample(&out, std::string(name) + "_sum", labels, s.sum);
      Sample(&out, std::string(name) + "_count", labels, static_cast<double>(s.count));
    }
  };
  histogram("keel_node_duration_seconds", node_duration_);
  Write(&out, "keel_retries_total", "counter", "Retries scheduled after failed attempts.", retries_);
  Write(&out, "keel_timeouts_total", "counter",
        "Timeouts: of one attempt (scope attempt) or of a node's total time (scope total).",
        timeouts_, {Label("scope", "attempt"), Label("scope", "total")});
  Write(&out, "keel_fallbacks_total", "counter",
        "Fallback workflows run for failed nodes, by the fallback's status.", fallbacks_);
  Write(&out, "keel_hedges_total", "counter", "Hedged LLM requests sent.", hedges_);
  Write(&out, "keel_retry_budget_exhausted_total", "counter",
        "Retries refused because the run's retry budget was spent.", retry_budget_exhausted_);
  Write(&out, "keel_budget_exceeded_total", "counter",
        "Runs stopped for exceeding their token or cost budget.", budget_exceeded_);

  // Read from the breakers as they are now (their lifetime statistics
  // restart when a breaker is reset), at most kMaxSeries breakers.
  constexpr BreakerState kStates[] = {BreakerState::kClosed,     BreakerState::kOpen,
                                      BreakerState::kHalfOpen,   BreakerState::kRecovering,
                                      BreakerState::kForcedOpen, BreakerState::kDisabled};
  std::map<std::string, double> state, slow, timeouts;
  for (size_t i = 0; i < breakers.size() && i < kMaxSeries; ++i) {
    const BreakerRow& row = breakers[i];
    std::string name = Label("name", row.key);
    for (BreakerState s : kStates) {
      state[Join(name, Label("state", BreakerStateName(s)))] = row.snapshot.state == s ? 1 : 0;
    }
    slow[name] = static_cast<double>(row.snapshot.slow);
    timeouts[name] = static_cast<double>(row.snapshot.timeouts);
  }
  Write(&out, "keel_circuitbreaker_state", "gauge",
        "1 for the state each circuit breaker is in now, 0 for the others.", state);
  Write(&out, "keel_circuitbreaker_transitions_total", "counter",
        "Circuit breaker transitions, by breaker and the state entered.", transitions_);
  Write(&out, "keel_circuitbreaker_rejected_total", "counter",
        "Calls refused by an open circuit breaker.", rejected_);
  Write(&out, "keel_circuitbreaker_slow_calls_total", "counter",
        "Calls through each circuit breaker that took its slow_seconds or longer.", slow);
  Write(&out, "keel_circuitbreaker_timeouts_total", "counter",
        "Calls through each circuit breaker that failed by timing out.", timeouts);

  Write(&out, "keel_llm_calls_total", "counter", "LLM calls, by provider and outcome.", llm_calls_);
  Write(&out, "keel_llm_cost_total", "counter",
        "What LLM calls cost, in the currency of the providers' prices.", llm_cost_);
  Write(&out, "keel_tool_calls_total", "counter", "Tool calls made by agents, by outcome.",
        tool_calls_, {Label("outcome", "ok"), Label("outcome", "error")});
  Header(&out, "gen_ai_client_token_usage", "histogram",
         "Tokens used per LLM call, by token type (input, output).");
  histogram("gen_ai_client_token_usage", token_usage_);
  Header(&out, "gen_ai_client_operation_duration_seconds", "histogram",
         "Duration of LLM calls, waits and retries inside the client included.");
  histogram("gen_ai_client_operation_duration_seconds", operation_duration_);
  Write(&out, "keel_events_total", "counter", "Events read from the database.",
        {{"", static_cast<double>(events_)}});
  Write(&out, "keel_events_by_severity_total", "counter",
        "Events read from the database, by kind and severity (info, warning, error, critical).",
        events_by_severity_);
  return out;
}

}  // namespace keel::service
