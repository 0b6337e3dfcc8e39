#include "engine/sqlite_breakers.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

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

}  // namespace

void ReadBreaker(const Statement& row, int first, BreakerSnapshot* snapshot) {
  snapshot->state = BreakerState::kClosed;
  ParseBreakerState(row.Text(first), &snapshot->state);
  snapshot->consecutive_failures = static_cast<int>(row.Int(first + 1));
  snapshot->probes_out = static_cast<int>(row.Int(first + 2));
  snapshot->probe_successes = static_cast<int>(row.Int(first + 3));
  snapshot->opened_at = row.Real(first + 4);
  snapshot->cooldown = row.Real(first + 5);
  snapshot->probe_lease = row.Real(first + 6);
  snapshot->calls = row.Int(first + 7);
  snapshot->failed = row.Int(first + 8);
  snapshot->recent = DecodeWindow(row.Text(first + 9));
}

void BindBreaker(Statement* stmt, int first, const BreakerSnapshot& snapshot,
                 std::string* window_json) {
  *window_json = EncodeWindow(snapshot.recent);
  stmt->Bind(first, BreakerStateName(snapshot.state))
      .Bind(first + 1, snapshot.consecutive_failures)
      .Bind(first + 2, snapshot.probes_out)
      .Bind(first + 3, snapshot.probe_successes)
      .Bind(first + 4, snapshot.opened_at)
      .Bind(first + 5, snapshot.cooldown)
      .Bind(first + 6, snapshot.probe_lease)
      .Bind(first + 7, snapshot.calls)
      .Bind(first + 8, snapshot.failed)
      .Bind(first + 9, *window_json);
}

}  // namespace keel::sqlite
