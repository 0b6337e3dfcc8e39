#include "engine/breaker_codec.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace keel {

std::string EncodeBreakerWindow(const std::deque<WindowCall>& recent) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const WindowCall& call : recent) {
    w.StartArray();
    w.Double(call.at);
    w.Int(call.flags);
    w.EndArray();
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

std::deque<WindowCall> DecodeBreakerWindow(const std::string& json) {
  std::deque<WindowCall> recent;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsArray()) return recent;
  for (const auto& item : doc.GetArray()) {
    if (!item.IsArray() || item.Size() != 2 || !item[0].IsNumber() || !item[1].IsInt()) {
      return {};
    }
    recent.push_back(WindowCall{item[0].GetDouble(), item[1].GetInt()});
  }
  return recent;
}

std::string EncodeBreakerProbes(const std::vector<ProbeLease>& probes) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const ProbeLease& p : probes) {
    w.StartObject();
    w.Key("id");
    w.Int64(p.id);
    w.Key("pid");
    w.Int64(p.owner.pid);
    w.Key("host");
    w.String(p.owner.host.c_str(), static_cast<rapidjson::SizeType>(p.owner.host.size()));
    w.Key("start");
    w.Int64(p.owner.start_ticks);
    w.Key("started_at");
    w.Double(p.started_at);
    w.Key("renewed_at");
    w.Double(p.renewed_at);
    w.EndObject();
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

std::vector<ProbeLease> DecodeBreakerProbes(const std::string& json) {
  std::vector<ProbeLease> probes;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsArray()) return probes;
  for (const auto& item : doc.GetArray()) {
    if (!item.IsObject()) return {};
    auto i64 = [&](const char* name, int64_t* out) {
      auto it = item.FindMember(name);
      if (it == item.MemberEnd() || !it->value.IsInt64()) return false;
      *out = it->value.GetInt64();
      return true;
    };
    auto real = [&](const char* name, double* out) {
      auto it = item.FindMember(name);
      if (it == item.MemberEnd() || !it->value.IsNumber()) return false;
      *out = it->value.GetDouble();
      return true;
    };
    ProbeLease p;
    auto host = item.FindMember("host");
    if (!i64("id", &p.id) || !i64("pid", &p.owner.pid) || !i64("start", &p.owner.start_ticks) ||
        !real("started_at", &p.started_at) || !real("renewed_at", &p.renewed_at) ||
        host == item.MemberEnd() || !host->value.IsString()) {
      return {};
    }
    p.owner.host.assign(host->value.GetString(), host->value.GetStringLength());
    probes.push_back(std::move(p));
  }
  return probes;
}

std::string EncodeBreakerConfig(const BreakerConfig& c) {
  if (c.key.empty()) return "{}";
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("key");
  w.String(c.key.c_str(), static_cast<rapidjson::SizeType>(c.key.size()));
  w.Key("failures");
  w.Int(c.failures);
  w.Key("failure_rate");
  w.Double(c.failure_rate);
  w.Key("window");
  w.Double(c.window);
  w.Key("min_calls");
  w.Int(c.min_calls);
  w.Key("cooldown");
  w.Double(c.cooldown);
  w.Key("factor");
  w.Double(c.factor);
  w.Key("max_cooldown");
  w.Double(c.max_cooldown);
  w.Key("probes");
  w.Int(c.probes);
  w.Key("successes");
  w.Int(c.successes);
  w.Key("window_calls");
  w.Int(c.window_calls);
  w.Key("slow_seconds");
  w.Double(c.slow_seconds);
  w.Key("slow_rate");
  w.Double(c.slow_rate);
  w.Key("ramp");
  w.Double(c.ramp);
  w.Key("ramp_start");
  w.Double(c.ramp_start);
  w.Key("adaptive");
  w.Bool(c.adaptive);
  w.Key("margin");
  w.Double(c.margin);
  w.Key("half_life");
  w.Double(c.half_life);
  w.Key("stable");
  w.Double(c.stable);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

BreakerConfig DecodeBreakerConfig(const std::string& json) {
  BreakerConfig c;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return c;
  auto key = doc.FindMember("key");
  if (key == doc.MemberEnd() || !key->value.IsString()) return c;
  auto real = [&](const char* name, double* out) {
    auto it = doc.FindMember(name);
    if (it != doc.MemberEnd() && it->value.IsNumber()) *out = it->value.GetDouble();
  };
  auto whole = [&](const char* name, int* out) {
    auto it = doc.FindMember(name);
    if (it != doc.MemberEnd() && it->value.IsInt()) *out = it->value.GetInt();
  };
  whole("failures", &c.failures);
  real("failure_rate", &c.failure_rate);
  real("window", &c.window);
  whole("min_calls", &c.min_calls);
  real("cooldown", &c.cooldown);
  real("factor", &c.factor);
  real("max_cooldown", &c.max_cooldown);
  whole("probes", &c.probes);
  whole("successes", &c.successes);
  whole("window_calls", &c.window_calls);
  real("slow_seconds", &c.slow_seconds);
  real("slow_rate", &c.slow_rate);
  real("ramp", &c.ramp);
  real("ramp_start", &c.ramp_start);
  auto adaptive = doc.FindMember("adaptive");
  if (adaptive != doc.MemberEnd() && adaptive->value.IsBool()) c.adaptive = adaptive->value.GetBool();
  real("margin", &c.margin);
  real("half_life", &c.half_life);
  real("stable", &c.stable);
  c.key.assign(key->value.GetString(), key->value.GetStringLength());
  return c;
}

std::string EncodeBreakerStats(const BreakerSnapshot& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("slow");
  w.Int64(s.slow);
  w.Key("timeouts");
  w.Int64(s.timeouts);
  w.Key("rejected");
  w.Int64(s.rejected);
  w.Key("successes_in_a_row");
  w.Int(s.consecutive_successes);
  w.Key("last_success_at");
  w.Double(s.last_success_at);
  w.Key("last_failure_at");
  w.Double(s.last_failure_at);
  w.Key("recovering_since");
  w.Double(s.recovering_since);
  w.Key("ramp_credit");
  w.Double(s.ramp_credit);
  w.Key("baseline");
  w.Double(s.baseline);
  w.Key("baseline_weight");
  w.Double(s.baseline_weight);
  w.Key("open_streak");
  w.Int(s.open_streak);
  w.Key("stable_since");
  w.Double(s.stable_since);
  w.Key("transitions");
  w.StartArray();
  for (const BreakerChange& t : s.transitions) {
    w.StartArray();
    w.Double(t.at);
    std::string_view from = BreakerStateName(t.from), to = BreakerStateName(t.to);
    w.String(from.data(), static_cast<rapidjson::SizeType>(from.size()));
    w.String(to.data(), static_cast<rapidjson::SizeType>(to.size()));
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

void DecodeBreakerStats(const std::string& json, BreakerSnapshot* s) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return;
  auto real = [&](const char* name, double* out) {
    auto it = doc.FindMember(name);
    if (it != doc.MemberEnd() && it->value.IsNumber()) *out = it->value.GetDouble();
  };
  auto count = [&](const char* name, int64_t* out) {
    auto it = doc.FindMember(name);
    if (it != doc.MemberEnd() && it->value.IsInt64()) *out = it->value.GetInt64();
  };
  auto whole = [&](const char* name, int* out) {
    auto it = doc.FindMember(name);
    if (it != doc.MemberEnd() && it->value.IsInt()) *out = it->value.GetInt();
  };
  count("slow", &s->slow);
  count("timeouts", &s->timeouts);
  count("rejected", &s->rejected);
  whole("successes_in_a_row", &s->consecutive_successes);
  real("last_success_at", &s->last_success_at);
  real("last_failure_at", &s->last_failure_at);
  real("recovering_since", &s->recovering_since);
  real("ramp_credit", &s->ramp_credit);
  real("baseline", &s->baseline);
  real("baseline_weight", &s->baseline_weight);
  whole("open_streak", &s->open_streak);
  real("stable_since", &s->stable_since);
  auto transitions = doc.FindMember("transitions");
  if (transitions == doc.MemberEnd() || !transitions->value.IsArray()) return;
  for (const auto& item : transitions->value.GetArray()) {
    BreakerChange change;
    if (!item.IsArray() || item.Size() != 3 || !item[0].IsNumber() || !item[1].IsString() ||
        !item[2].IsString() || !ParseBreakerState(item[1].GetString(), &change.from) ||
        !ParseBreakerState(item[2].GetString(), &change.to)) {
      continue;
    }
    change.at = item[0].GetDouble();
    s->transitions.push_back(change);
  }
}

}  // namespace keel
