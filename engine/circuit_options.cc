// The `circuit` policy option (ParseCircuit of policy_option_checks.h):
// the breaker's key, thresholds, window, slow calls, cooldown, probes,
// recovery ramp and adaptive threshold, into a BreakerConfig.

#include <rapidjson/document.h>

#include <string>

#include "engine/node_policy.h"
#include "engine/policy_option_checks.h"

namespace keel::policy_options {
namespace {

using rapidjson::Value;

// circuit.window: seconds, or { seconds = S, calls = N }.
Status ParseWindow(const Value& v, BreakerConfig* c) {
  if (v.IsNumber()) return Seconds(v, "circuit.window", &c->window);
  if (!v.IsObject()) return Bad("circuit.window", "expected seconds or { seconds = S, calls = N }");
  c->window = 0;  // a table without seconds: no time limit
  Status s = ParseTable(v, "circuit.window", {"seconds", "calls"},
                        [&](const std::string& key, const Value& x, const std::string& name,
                            Status* out) {
                          if (key == "seconds") {
                            *out = Seconds(x, name, &c->window);
                          } else if (key == "calls") {
                            *out = Count(x, name, 1, &c->window_calls);
                          } else {
                            return false;
                          }
                          return true;
                        });
  if (s.ok() && c->window == 0 && c->window_calls == 0) {
    return Bad("circuit.window", "expected seconds, { seconds = S } or { calls = N }");
  }
  return s;
}

// circuit.slow: { seconds = S, rate = R }, both required.
Status ParseSlow(const Value& v, BreakerConfig* c) {
  Status s = ParseTable(
      v, "circuit.slow", {"seconds", "rate"},
      [&](const std::string& key, const Value& x, const std::string& name, Status* out) {
        if (key == "seconds") {
          *out = Seconds(x, name, &c->slow_seconds);
        } else if (key == "rate") {
          *out = Fraction(x, name, &c->slow_rate);
        } else {
          return false;
        }
        return true;
      });
  if (s.ok() && (c->slow_seconds == 0 || c->slow_rate == 0)) {
    return Bad("circuit.slow", "expected { seconds = S, rate = R }: both are needed");
  }
  return s;
}

// circuit.recovery: { ramp = S, start = share }.
Status ParseRecovery(const Value& v, BreakerConfig* c) {
  Status s = ParseTable(
      v, "circuit.recovery", {"ramp", "start"},
      [&](const std::string& key, const Value& x, const std::string& name, Status* out) {
        if (key == "ramp") {
          *out = Seconds(x, name, &c->ramp);
        } else if (key == "start") {
          *out = Fraction(x, name, &c->ramp_start);
        } else {
          return false;
        }
        return true;
      });
  if (s.ok() && c->ramp == 0) return Bad("circuit.recovery", "expected { ramp = seconds }");
  return s;
}

// circuit.adaptive: true, or { margin = M, half_life = calls, stable = S }.
Status ParseAdaptive(const Value& v, BreakerConfig* c) {
  if (v.IsBool()) {
    c->adaptive = v.GetBool();
    return Status::Ok();
  }
  if (!v.IsObject()) {
    return Bad("circuit.adaptive", "expected true, false or { margin, half_life, stable }");
  }
  c->adaptive = true;
  return ParseTable(
      v, "circuit.adaptive", {"margin", "half_life", "stable"},
      [&](const std::string& key, const Value& x, const std::string& name, Status* out) {
        if (key == "margin") {
          *out = Fraction(x, name, &c->margin);
        } else if (key == "half_life") {
          if (!x.IsNumber() || !(x.GetDouble() >= 1)) {
            *out = Bad(name, "expected a number of calls >= 1");
          } else {
            c->half_life = x.GetDouble();
          }
        } else if (key == "stable") {
          *out = Seconds(x, name, &c->stable);
        } else {
          return false;
        }
        return true;
      });
}

}  // namespace

Status ParseCircuit(const Value& v, NodePolicy* p) {
  BreakerConfig& c = p->circuit;
  if (v.IsBool()) {
    p->has_circuit = v.GetBool();
    return Status::Ok();
  }
  if (v.IsString()) {
    p->has_circuit = true;
    c.key = v.GetString();
    return Status::Ok();
  }
  if (!v.IsObject()) return Bad("circuit", "expected a table, a key string or true");
  p->has_circuit = true;
  return ParseTable(
      v, "circuit",
      {"key", "failures", "failure_rate", "window", "min_calls", "slow", "cooldown", "factor",
       "max_cooldown", "probes", "successes", "recovery", "adaptive"},
      [&](const std::string& key, const Value& x, const std::string& name, Status* s) {
        if (key == "key") {
          if (!x.IsString() || x.GetStringLength() == 0) {
            *s = Bad(name, "expected a string");
          } else {
            c.key = x.GetString();
          }
        } else if (key == "failures") {
          *s = Count(x, name, 1, &c.failures);
        } else if (key == "failure_rate") {
          *s = Fraction(x, name, &c.failure_rate);
        } else if (key == "window") {
          *s = ParseWindow(x, &c);
        } else if (key == "min_calls") {
          *s = Count(x, name, 1, &c.min_calls);
        } else if (key == "slow") {
          *s = ParseSlow(x, &c);
        } else if (key == "cooldown") {
          *s = Seconds(x, name, &c.cooldown, true);
        } else if (key == "factor") {
          if (!x.IsNumber() || x.GetDouble() < 1) {
            *s = Bad(name, "expected a number >= 1");
          } else {
            c.factor = x.GetDouble();
          }
        } else if (key == "max_cooldown") {
          *s = Seconds(x, name, &c.max_cooldown);
        } else if (key == "probes") {
          *s = Count(x, name, 1, &c.probes);
        } else if (key == "successes") {
          *s = Count(x, name, 1, &c.successes);
        } else if (key == "recovery") {
          *s = ParseRecovery(x, &c);
        } else if (key == "adaptive") {
          *s = ParseAdaptive(x, &c);
        } else {
          return false;
        }
        return true;
      });
}

}  // namespace keel::policy_options
