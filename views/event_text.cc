#include "views/event_text.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>

#include "views/format.h"

namespace keel {
namespace {

const rapidjson::Value* Member(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return nullptr;
  auto it = object.FindMember(name);
  return it == object.MemberEnd() ? nullptr : &it->value;
}

std::string String(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* value = Member(object, name);
  return value && value->IsString() ? std::string(value->GetString(), value->GetStringLength())
                                    : std::string();
}

double Number(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* value = Member(object, name);
  return value && value->IsNumber() ? value->GetDouble() : 0;
}

bool True(const rapidjson::Value& object, const char* name) {
  const rapidjson::Value* value = Member(object, name);
  return value && value->IsBool() && value->GetBool();
}

std::string Spaced(std::string_view kind) {
  std::string text(kind);
  std::replace(text.begin(), text.end(), '_', ' ');
  return text;
}

// "KIND: MESSAGE", the message's first line, or "" when the data has neither.
std::string Error(const rapidjson::Value& data) {
  std::string kind = String(data, "kind");
  std::string message = FirstLine(String(data, "message"));
  if (kind.empty()) return message;
  return message.empty() ? kind : kind + ": " + message;
}

std::string Describe(std::string_view node, std::string_view kind, const rapidjson::Value& data);

std::string Breaker(std::string_view kind, const rapidjson::Value& data) {
  std::string text = "breaker " + String(data, "key") + " ";
  if (kind == "breaker_half_open") {
    text += "half-open";
  } else if (kind == "breaker_reopened") {
    text += "re-opened";
  } else {
    text += Spaced(kind.substr(8));
  }
  int reopens = static_cast<int>(Number(data, "reopens"));
  if (reopens > 1 && (kind == "breaker_opened" || kind == "breaker_reopened")) {
    text += fmt::format(" ({} times in a row)", reopens);
  }
  return text;
}

std::string Node(std::string_view node, std::string_view kind, const rapidjson::Value& data) {
  std::string name(node);
  std::string took = FormatSeconds(Number(data, "seconds"));
  if (kind == "node_started" || kind == "attempt_started") {
    int attempt = static_cast<int>(Number(data, "attempt"));
    return attempt > 1 ? fmt::format("{} started (attempt {})", name, attempt) : name + " started";
  }
  if (kind == "node_succeeded") return fmt::format("{} succeeded in {}", name, took);
  if (kind == "node_fallback") return fmt::format("{} succeeded by fallback in {}", name, took);
  if (kind == "node_skipped") return name + " skipped";
  if (kind == "node_waiting") return name + " waiting";
  if (kind == "node_cancelled") return fmt::format("{} cancelled: {}", name, Error(data));
  if (kind == "node_failed") {
    return fmt::format("{}{} failed in {}: {}", True(data, "optional") ? "optional node " : "",
                       name, took, Error(data));
  }
  return name + " " + Spaced(kind);
}

std::string Describe(std::string_view node, std::string_view kind, const rapidjson::Value& data) {
  std::string name(node);
  if (IsBreakerTransition(kind)) return Breaker(kind, data);
  if (kind.starts_with("node_") || kind == "attempt_started") return Node(node, kind, data);
  if (kind == "attempt_failed") {
    return fmt::format("{} attempt {} failed: {}", name, static_cast<int>(Number(data, "attempt")),
                       Error(data));
  }
  if (kind == "retry_scheduled") {
    return fmt::format("{} retries in {} (attempt {}, after {})", name,
                       FormatSeconds(Number(data, "delay")),
                       static_cast<int>(Number(data, "attempt")), String(data, "after"));
  }
  if (kind == "circuit_rejected") {
    return fmt::format("{} rejected: breaker {} is open, next probe in {}", name,
                       String(data, "key"), FormatSeconds(Number(data, "retry_in")));
  }
  if (kind == "total_timeout") {
    return fmt::format("{} total timeout of {} passed", name,
                       FormatSeconds(Number(data, "seconds")));
  }
  if (kind == "fallback_started") {
    return fmt::format("{} falls back to {} after {}", name, String(data, "workflow"),
                       String(data, "after"));
  }
  if (kind == "fallback_finished") {
    return fmt::format("{} fallback {} {}", name, String(data, "workflow"), String(data, "status"));
  }
  if (kind == "budget_exceeded") return String(data, "reason");
  if (kind == "run_finished") return "run " + String(data, "status");
  if (kind == "fallback_event") {
    static const rapidjson::Value kEmpty(rapidjson::kObjectType);
    const rapidjson::Value* inner = Member(data, "data");
    std::string inner_node = String(data, "fallback") + "/" + String(data, "node");
    return fmt::format("{} (fallback): {}", name,
                       Describe(inner_node, String(data, "event"), inner ? *inner : kEmpty));
  }
  return name.empty() ? Spaced(kind) : name + " " + Spaced(kind);
}

}  // namespace

bool IsBreakerTransition(std::string_view kind) {
  return kind.starts_with("breaker_") && kind.size() > 8;
}

std::string DescribeEvent(std::string_view node, std::string_view kind,
                          std::string_view data_json) {
  rapidjson::Document data;
  data.Parse(data_json.data(), data_json.size());
  if (data.HasParseError()) data.SetObject();
  return Describe(node, kind, data);
}

}  // namespace keel
