#include "engine/breaker_codec.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace keel {

std::string EncodeBreakerWindow(const std::vector<std::pair<double, int>>& recent) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartArray();
  for (const auto& [time, failed] : recent) {
    w.StartArray();
    w.Double(time);
    w.Int(failed);
    w.EndArray();
  }
  w.EndArray();
  return std::string(buf.GetString(), buf.GetSize());
}

std::vector<std::pair<double, int>> DecodeBreakerWindow(const std::string& json) {
  std::vector<std::pair<double, int>> recent;
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsArray()) return recent;
  for (const auto& item : doc.GetArray()) {
    if (!item.IsArray() || item.Size() != 2 || !item[0].IsNumber() || !item[1].IsInt()) {
      return {};
    }
    recent.emplace_back(item[0].GetDouble(), item[1].GetInt());
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
  c.key.assign(key->value.GetString(), key->value.GetStringLength());
  return c;
}

}  // namespace keel
