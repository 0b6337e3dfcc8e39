#include "engine/run_history.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "engine/json_text.h"
#include "engine/rerun.h"

namespace keel {
namespace {

int64_t IntField(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsNumber()) return 0;
  return it->value.IsInt64() ? it->value.GetInt64() : static_cast<int64_t>(it->value.GetDouble());
}

double RealField(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  return it != object.MemberEnd() && it->value.IsNumber() ? it->value.GetDouble() : 0;
}

Usage UsageIn(const rapidjson::Value& data) {
  Usage usage;
  usage.prompt_tokens = IntField(data, "prompt_tokens");
  usage.completion_tokens = IntField(data, "completion_tokens");
  usage.cost = RealField(data, "cost");
  return usage;
}

// A fallback workflow's event wrapped in a "fallback_event" (`doc`, an
// object): {fallback, node, event, data}. Null `data` when it is not one.
struct Wrapped {
  std::string_view workflow, node, kind;
  const rapidjson::Value* data = nullptr;
};

Wrapped Unwrap(const rapidjson::Document& doc) {
  auto text = [&doc](const char* name) -> std::string_view {
    auto it = doc.FindMember(name);
    return it != doc.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
  };
  auto data = doc.FindMember("data");
  if (data == doc.MemberEnd() || !data->value.IsObject()) return {};
  return Wrapped{text("fallback"), text("node"), text("event"), &data->value};
}

}  // namespace

std::optional<Usage> UsageOf(const EventRecord& event) {
  bool direct = event.kind == kUsageEventKind;
  if (!direct && event.kind != "fallback_event") return std::nullopt;
  rapidjson::Document doc;
  if (doc.Parse(event.data_json.c_str()).HasParseError() || !doc.IsObject()) return std::nullopt;
  if (direct) return UsageIn(doc);
  Wrapped wrapped = Unwrap(doc);
  if (wrapped.data == nullptr || wrapped.kind != kUsageEventKind) return std::nullopt;
  return UsageIn(*wrapped.data);
}

RunHistory ReadRunHistory(const std::vector<EventRecord>& events) {
  RunHistory history;
  for (const EventRecord& event : events) {
    if (event.kind == "wait_started" && !event.node.empty()) {
      rapidjson::Document doc;
      if (doc.Parse(event.data_json.c_str()).HasParseError() || !doc.IsObject()) continue;
      history.wait_due[event.node] = RealField(doc, "due");
    } else if (event.kind == "node_started" && !event.node.empty()) {
      rapidjson::Document doc;
      if (doc.Parse(event.data_json.c_str()).HasParseError() || !doc.IsObject()) continue;
      int& attempts = history.attempts[event.node];
      attempts = std::max(attempts, static_cast<int>(IntField(doc, "attempt")));
    } else if (event.kind == "node_failed" && !event.node.empty()) {
      // A wait that failed (timed out) is reached afresh when the run resumes.
      history.wait_due.erase(event.node);
    } else if (event.kind == "checkpoint" && !event.node.empty()) {
      history.journals[event.node].push_back(MakeJson(event.data_json));
    } else if (event.kind == "fallback_event" && !event.node.empty()) {
      rapidjson::Document doc;
      if (doc.Parse(event.data_json.c_str()).HasParseError() || !doc.IsObject()) continue;
      Wrapped wrapped = Unwrap(doc);
      if (wrapped.data == nullptr) continue;
      if (wrapped.kind == kUsageEventKind) {
        history.spent += UsageIn(*wrapped.data);
      } else if (wrapped.kind == "checkpoint" && !wrapped.node.empty()) {
        rapidjson::StringBuffer buf;
        rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
        wrapped.data->Accept(writer);
        history.journals[FallbackJournalKey(event.node, wrapped.workflow, wrapped.node)].push_back(
            MakeJson(std::string(buf.GetString(), buf.GetSize())));
      }
    } else if (event.kind == "escalation_started") {
      ++history.escalations;
    } else if (event.kind == kRerunEventKind) {
      // `keel resume --from`: what those nodes checkpointed before runs afresh.
      DropHistory(RerunEventNodes(event.data_json), &history);
    } else if (auto usage = UsageOf(event)) {
      history.spent += *usage;
    }
  }
  return history;
}

}  // namespace keel
