#include "store/sqlite/sqlite_breakers.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string_view>
#include <utility>
#include <vector>

namespace keel::sqlite {
namespace {

std::string EncodeWindow(const std::vector<std::pair<double, int>>& recent) {
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

std::vector<std::pair<double, int>> DecodeWindow(const std::string& json) {
  std::vector<std::pair<double, int>> recent;
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsArray()) return recent;
  for (const auto& item : doc.GetArray()) {
    if (!item.IsArray() || item.Size() != 2 || !item[0].IsNumber() || !item[1].IsInt()) {
      return {};
    }
    recent.emplace_back(item[0].GetDouble(), item[1].GetInt());
  }
  return recent;
}

std::string EncodeProbes(const std::vector<ProbeLease>& probes) {
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

std::vector<ProbeLease> DecodeProbes(const std::string& json) {
  std::vector<ProbeLease> probes;
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
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

std::string EncodeConfig(const BreakerConfig& c) {
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

// A damaged or empty configuration reads as unknown (an empty key).
BreakerConfig DecodeConfig(const std::string& json) {
  BreakerConfig c;
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
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

}  // namespace

void ReadBreaker(const Statement& row, int first, BreakerSnapshot* snapshot) {
  snapshot->state = BreakerState::kClosed;
  ParseBreakerState(row.Text(first), &snapshot->state);
  snapshot->consecutive_failures = static_cast<int>(row.Int(first + 1));
  // probes_out (first + 2) repeats the length of the probe list.
  snapshot->probe_successes = static_cast<int>(row.Int(first + 3));
  snapshot->opened_at = row.Real(first + 4);
  snapshot->cooldown = row.Real(first + 5);
  snapshot->probes = DecodeProbes(row.Text(first + 6));
  snapshot->calls = row.Int(first + 7);
  snapshot->failed = row.Int(first + 8);
  snapshot->recent = DecodeWindow(row.Text(first + 9));
  snapshot->config = DecodeConfig(row.Text(first + 10));
}

void BindBreaker(Statement* stmt, int first, const BreakerSnapshot& snapshot, std::string* json) {
  *json = EncodeWindow(snapshot.recent);
  const size_t window_size = json->size();
  *json += EncodeProbes(snapshot.probes);
  const size_t probes_end = json->size();
  *json += EncodeConfig(snapshot.config);
  const std::string_view window = std::string_view(*json).substr(0, window_size);
  const std::string_view probes =
      std::string_view(*json).substr(window_size, probes_end - window_size);
  const std::string_view config = std::string_view(*json).substr(probes_end);
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
      .Bind(first + 10, config);
}

}  // namespace keel::sqlite
