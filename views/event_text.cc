#include "views/event_text.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>

#include "engine/json_members.h"
#include "views/format.h"

namespace keel {
namespace {

std::string Spaced(std::string_view kind) {
  std::string text(kind);
  std::replace(text.begin(), text.end(), '_', ' ');
  return text;
}

// "KIND: MESSAGE", the message's first line, or "" when the data has neither.
std::string Error(const rapidjson::Value& data) {
  std::string kind = JsonText(data, "kind");
  std::string message = FirstLine(JsonText(data, "message"));
  if (kind.empty()) return message;
  return message.empty() ? kind : kind + ": " + message;
}

std::string Describe(std::string_view node, std::string_view kind, const rapidjson::Value& data);

std::string Breaker(std::string_view kind, const rapidjson::Value& data) {
  std::string text = "breaker " + JsonText(data, "key") + " ";
  if (kind == "breaker_half_open") {
    text += "half-open";
  } else if (kind == "breaker_reopened") {
    text += "re-opened";
  } else {
    text += Spaced(kind.substr(8));
  }
  int reopens = static_cast<int>(JsonNumber(data, "reopens"));
  if (reopens > 1 && (kind == "breaker_opened" || kind == "breaker_reopened")) {
    text += fmt::format(" ({} times in a row)", reopens);
  }
  return text;
}

std::string Node(std::string_view node, std::string_view kind, const rapidjson::Value& data) {
  std::string name(node);
  std::string took = FormatSeconds(JsonNumber(data, "seconds"));
  if (kind == "node_started" || kind == "attempt_started") {
    int attempt = static_cast<int>(JsonNumber(data, "attempt"));
    return attempt > 1 ? fmt::format("{} started (attempt {})", name, attempt) : name + " started";
  }
  if (kind == "node_succeeded") return fmt::format("{} succeeded in {}", name, took);
  if (kind == "node_fallback") return fmt::format("{} succeeded by fallback in {}", name, took);
  if (kind == "node_skipped") return name + " skipped";
  if (kind == "node_waiting") return name + " waiting";
  if (kind == "node_cancelled") return fmt::format("{} cancelled: {}", name, Error(data));
  if (kind == "node_failed") {
    return fmt::format("{}{} failed in {}: {}", JsonTrue(data, "optional") ? "optional node " : "",
                       name, took, Error(data));
  }
  return name + " " + Spaced(kind);
}

std::string Describe(std::string_view node, std::string_view kind, const rapidjson::Value& data) {
  std::string name(node);
  if (IsBreakerTransition(kind)) return Breaker(kind, data);
  if (kind.starts_with("node_") || kind == "attempt_started") return Node(node, kind, data);
  if (kind == "attempt_failed") {
    return fmt::format("{} attempt {} failed: {}", name, static_cast<int>(JsonNumber(data, "attempt")),
                       Error(data));
  }
  if (kind == "retry_scheduled") {
    return fmt::format("{} retries in {} (attempt {}, after {})", name,
                       FormatSeconds(JsonNumber(data, "delay")),
                       static_cast<int>(JsonNumber(data, "attempt")), JsonText(data, "after"));
  }
  if (kind == "circuit_rejected") {
    return fmt::format("{} rejected: breaker {} is open, next probe in {}", name,
                       JsonText(data, "key"), FormatSeconds(JsonNumber(data, "retry_in")));
  }
  if (kind == "total_timeout") {
    return fmt::format("{} total timeout of {} passed", name,
                       FormatSeconds(JsonNumber(data, "seconds")));
  }
  if (kind == "fallback_started") {
    return fmt::format("{} falls back to {} after {}", name, JsonText(data, "workflow"),
                       JsonText(data, "after"));
  }
  if (kind == "fallback_finished") {
    return fmt::format("{} fallback {} {}", name, JsonText(data, "workflow"), JsonText(data, "status"));
  }
  if (kind == "budget_exceeded") return JsonText(data, "reason");
  if (kind == "run_finished") return "run " + JsonText(data, "status");
  if (kind == "fallback_event") {
    static const rapidjson::Value kEmpty(rapidjson::kObjectType);
    const rapidjson::Value* inner = JsonMember(data, "data");
    std::string inner_node = JsonText(data, "fallback") + "/" + JsonText(data, "node");
    return fmt::format("{} (fallback): {}", name,
                       Describe(inner_node, JsonText(data, "event"), inner ? *inner : kEmpty));
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
