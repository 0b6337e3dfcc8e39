#include "engine/run_history.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "engine/json_text.h"

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

}  // namespace

std::optional<Usage> UsageOf(const EventRecord& event) {
  bool direct = event.kind == kUsageEventKind;
  if (!direct && event.kind != "fallback_event") return std::nullopt;
  rapidjson::Document doc;
  if (doc.Parse(event.data_json.c_str()).HasParseError() || !doc.IsObject()) return std::nullopt;
  const rapidjson::Value* data = &doc;
  if (!direct) {
    auto kind = doc.FindMember("event");
    auto inner = doc.FindMember("data");
    if (kind == doc.MemberEnd() || !kind->value.IsString() ||
        std::string_view(kind->value.GetString()) != kUsageEventKind || inner == doc.MemberEnd() ||
        !inner->value.IsObject()) {
      return std::nullopt;
    }
    data = &inner->value;
  }
  Usage usage;
  usage.prompt_tokens = IntField(*data, "prompt_tokens");
  usage.completion_tokens = IntField(*data, "completion_tokens");
  usage.cost = RealField(*data, "cost");
  return usage;
}

namespace {

// A fallback workflow's checkpoint, wrapped in a "fallback_event" of the node
// it ran for, into `history`.
void AddFallbackCheckpoint(const EventRecord& event, RunHistory* history) {
  rapidjson::Document doc;
  if (doc.Parse(event.data_json.c_str()).HasParseError() || !doc.IsObject()) return;
  auto kind = doc.FindMember("event");
  auto workflow = doc.FindMember("fallback");
  auto node = doc.FindMember("node");
  auto data = doc.FindMember("data");
  if (kind == doc.MemberEnd() || !kind->value.IsString() ||
      std::string_view(kind->value.GetString()) != "checkpoint" || workflow == doc.MemberEnd() ||
      !workflow->value.IsString() || node == doc.MemberEnd() || !node->value.IsString() ||
      data == doc.MemberEnd() || !data->value.IsObject()) {
    return;
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  data->value.Accept(writer);
  history
      ->journals[FallbackJournalKey(event.node, workflow->value.GetString(),
                                    node->value.GetString())]
      .push_back(MakeJson(std::string(buf.GetString(), buf.GetSize())));
}

}  // namespace

RunHistory ReadRunHistory(const std::vector<EventRecord>& events) {
  RunHistory history;
  for (const EventRecord& event : events) {
    if (event.kind == "checkpoint" && !event.node.empty()) {
      history.journals[event.node].push_back(MakeJson(event.data_json));
    } else if (event.kind == "fallback_event" && !event.node.empty()) {
      AddFallbackCheckpoint(event, &history);
      if (auto usage = UsageOf(event)) history.spent += *usage;
    } else if (auto usage = UsageOf(event)) {
      history.spent += *usage;
    }
  }
  return history;
}

}  // namespace keel
