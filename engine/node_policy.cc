// Reading a node's policy options (see node_policy.h): timeout,
// total_timeout, retry, fallback, join, memory and max_concurrency, over the
// workflow's defaults. The `circuit` option is read in circuit_options.cc.

#include "engine/node_policy.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cmath>

#include "engine/policy_option_checks.h"

namespace keel {
namespace {

using policy_options::Bad;
using policy_options::Count;
using policy_options::ParseCircuit;
using policy_options::Seconds;
using policy_options::UnknownKey;
using rapidjson::Value;

// A list of error kind names (a single name counts as a list of one).
Status ErrorKinds(const Value& v, const std::string& option, std::vector<ErrorKind>* out) {
  out->clear();
  auto add = [&](const Value& k) {
    ErrorKind kind;
    if (!k.IsString() || !ParseErrorKind(k.GetString(), &kind) || kind == ErrorKind::kNone) {
      return Bad(option, "unknown error kind (expected timeout, transient, rate_limited, "
                         "permanent, circuit_open, cancelled or error)");
    }
    out->push_back(kind);
    return Status::Ok();
  };
  if (v.IsString()) return add(v);
  if (!v.IsArray() || v.Empty()) return Bad(option, "expected a list of error kinds");
  for (auto& k : v.GetArray()) {
    if (Status s = add(k); !s.ok()) return s;
  }
  return Status::Ok();
}

// One `fallback` entry: a workflow name, or { on = kinds, workflow = name }.
Status ParseFallbackRule(const Value& v, std::vector<FallbackRule>* rules) {
  const char* expected =
      "expected a workflow name, { on = { kinds... }, workflow = name }, or a list of them";
  FallbackRule rule;
  if (v.IsString()) {
    rule.workflow = v.GetString();
  } else if (v.IsObject()) {
    for (auto& m : v.GetObject()) {
      std::string key = m.name.GetString();
      if (key == "workflow" && m.value.IsString()) {
        rule.workflow = m.value.GetString();
      } else if (key == "on") {
        if (Status s = ErrorKinds(m.value, "fallback.on", &rule.on); !s.ok()) return s;
      } else if (key != "workflow") {
        return UnknownKey("fallback", key, {"on", "workflow"});
      }
    }
  }
  if (rule.workflow.empty()) return Bad("fallback", expected);
  rules->push_back(std::move(rule));
  return Status::Ok();
}

Status ParseRetry(const Value& v, RetryPolicy* r) {
  if (v.IsInt()) return Count(v, "retry", 1, &r->attempts);
  if (v.IsBool()) {
    if (!v.GetBool()) r->attempts = 1;
    return Status::Ok();
  }
  if (!v.IsObject()) return Bad("retry", "expected a table or a number of attempts");
  for (auto& m : v.GetObject()) {
    std::string key = m.name.GetString();
    Status s;
    if (key == "attempts") {
      s = Count(m.value, "retry.attempts", 1, &r->attempts);
    } else if (key == "base") {
      s = Seconds(m.value, "retry.base", &r->base, true);
    } else if (key == "max") {
      s = Seconds(m.value, "retry.max", &r->max);
    } else if (key == "factor") {
      if (!m.value.IsNumber() || m.value.GetDouble() < 1) {
        s = Bad("retry.factor", "expected a number >= 1");
      } else {
        r->factor = m.value.GetDouble();
      }
    } else if (key == "jitter") {
      std::string j = m.value.IsString() ? m.value.GetString() : "";
      if (j == "none") {
        r->jitter = Jitter::kNone;
      } else if (j == "full") {
        r->jitter = Jitter::kFull;
      } else if (j == "equal") {
        r->jitter = Jitter::kEqual;
      } else if (j == "decorrelated") {
        r->jitter = Jitter::kDecorrelated;
      } else {
        s = Bad("retry.jitter", "expected one of none, full, equal, decorrelated");
      }
    } else if (key == "on") {
      s = ErrorKinds(m.value, "retry.on", &r->on);
    } else {
      s = UnknownKey("retry", key, {"attempts", "base", "max", "factor", "jitter", "on"});
    }
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status ParseJoin(const Value& v, JoinPolicy* j) {
  const char* expected = "expected \"all\", \"any\", { quorum = k } or { best_effort = seconds }";
  if (v.IsString()) {
    std::string s = v.GetString();
    if (s == "all") {
      j->kind = JoinPolicy::Kind::kAll;
    } else if (s == "any") {
      j->kind = JoinPolicy::Kind::kAny;
    } else {
      return Bad("join", expected);
    }
    return Status::Ok();
  }
  if (v.IsObject() && v.MemberCount() == 1) {
    auto& m = *v.MemberBegin();
    std::string key = m.name.GetString();
    if (key == "quorum") {
      j->kind = JoinPolicy::Kind::kQuorum;
      return Count(m.value, "join.quorum", 1, &j->quorum);
    }
    if (key == "best_effort") {
      j->kind = JoinPolicy::Kind::kBestEffort;
      return Seconds(m.value, "join.best_effort", &j->best_effort, true);
    }
  }
  return Bad("join", expected);
}

Status ParseMemory(const Value& v, size_t* bytes) {
  const char* expected = "expected MiB as a number, or a size such as \"64MB\" or \"1GB\"";
  double mib = 0;
  if (v.IsNumber()) {
    mib = v.GetDouble();
  } else if (v.IsString()) {
    std::string s = v.GetString();
    size_t used = 0;
    try {
      mib = std::stod(s, &used);
    } catch (...) {
      return Bad("memory", expected);
    }
    std::string unit = s.substr(used);
    if (unit == "KB" || unit == "K" || unit == "KiB") {
      mib /= 1024;
    } else if (unit == "GB" || unit == "G" || unit == "GiB") {
      mib *= 1024;
    } else if (!(unit == "MB" || unit == "M" || unit == "MiB" || unit.empty())) {
      return Bad("memory", expected);
    }
  } else {
    return Bad("memory", expected);
  }
  if (!(mib >= 1 && mib <= 1024 * 1024)) return Bad("memory", "must be between 1 MiB and 1 TiB");
  *bytes = static_cast<size_t>(mib * 1024 * 1024);
  return Status::Ok();
}

// Applies the options of one object (a node's, or the workflow defaults).
Status Apply(const Value& obj, bool is_defaults, NodePolicy* p) {
  for (auto& m : obj.GetObject()) {
    std::string key = m.name.GetString();
    const Value& v = m.value;
    Status s;
    if (key == "timeout") {
      s = Seconds(v, "timeout", &p->timeout);
    } else if (key == "total_timeout") {
      s = Seconds(v, "total_timeout", &p->total_timeout);
    } else if (key == "retry") {
      s = ParseRetry(v, &p->retry);
    } else if (key == "circuit") {
      s = ParseCircuit(v, p);
    } else if (key == "memory") {
      s = ParseMemory(v, &p->memory);
    } else if (key == "max_concurrency") {
      if (v.IsObject()) {
        for (auto& m2 : v.GetObject()) {
          std::string k2 = m2.name.GetString();
          if (k2 == "limit") {
            s = Count(m2.value, "max_concurrency.limit", 1, &p->max_concurrency);
          } else if (k2 == "key" && m2.value.IsString() && m2.value.GetStringLength() > 0) {
            p->bulkhead_key = m2.value.GetString();
          } else {
            s = Bad("max_concurrency." + k2, "expected limit = n or key = \"name\"");
          }
          if (!s.ok()) break;
        }
        if (s.ok() && p->max_concurrency == 0) s = Bad("max_concurrency", "needs a limit");
      } else {
        s = Count(v, "max_concurrency", 1, &p->max_concurrency);
      }
    } else if (is_defaults && key == "retry_budget") {
      continue;
    } else if (!is_defaults && key == "fallback") {
      p->fallback.clear();
      if (v.IsArray() && !v.Empty()) {
        for (auto& f : v.GetArray()) {
          s = ParseFallbackRule(f, &p->fallback);
          if (!s.ok()) break;
        }
      } else {
        s = ParseFallbackRule(v, &p->fallback);
      }
    } else if (!is_defaults && key == "join") {
      s = ParseJoin(v, &p->join);
    } else {
      s = Bad(key, "unknown option");
    }
    if (!s.ok()) return is_defaults ? Status::Error(s.kind(), "defaults." + s.message()) : s;
  }
  return Status::Ok();
}

Result<rapidjson::Document> ParseObject(const std::string& json, const char* what) {
  rapidjson::Document doc;
  if (json.empty()) {
    doc.SetObject();
    return doc;
  }
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::Error(ErrorKind::kPermanent, std::string(what) + ": expected a table");
  }
  return doc;
}

}  // namespace

bool FallbackRule::Matches(ErrorKind kind) const {
  return on.empty() || std::find(on.begin(), on.end(), kind) != on.end();
}

Result<NodePolicy> ParseDefaultPolicy(const std::string& defaults_json) {
  auto defaults = ParseObject(defaults_json, "defaults");
  if (!defaults.ok()) return defaults.status();
  NodePolicy p;
  Status s = Apply(*defaults, true, &p);
  if (!s.ok()) return s;
  return p;
}

Result<NodePolicy> ParseNodePolicy(const std::string& node, const std::string& options_json,
                                   const NodePolicy& defaults) {
  NodePolicy p = defaults;
  if (options_json != "{}" && !options_json.empty()) {
    auto options = ParseObject(options_json, "options");
    if (!options.ok()) return options.status();
    Status s = Apply(*options, false, &p);
    if (!s.ok()) return s;
  }
  if (p.circuit.key.empty()) p.circuit.key = node;
  if (p.bulkhead_key.empty()) p.bulkhead_key = p.circuit.key;
  if (p.retry.max < p.retry.base) p.retry.max = p.retry.base;
  if (p.circuit.max_cooldown < p.circuit.cooldown) p.circuit.max_cooldown = p.circuit.cooldown;
  return p;
}

Result<NodePolicy> ParseNodePolicy(const std::string& node, const std::string& options_json,
                                   const std::string& defaults_json) {
  auto defaults = ParseDefaultPolicy(defaults_json);
  if (!defaults.ok()) return defaults.status();
  return ParseNodePolicy(node, options_json, *defaults);
}

Result<int> ParseRetryBudget(const std::string& defaults_json) {
  auto defaults = ParseObject(defaults_json, "defaults");
  if (!defaults.ok()) return defaults.status();
  auto it = defaults->FindMember("retry_budget");
  if (it == defaults->MemberEnd()) return -1;
  int budget = 0;
  Status s = Count(it->value, "defaults.retry_budget", 0, &budget);
  if (!s.ok()) return s;
  return budget;
}

}  // namespace keel
