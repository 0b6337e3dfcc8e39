#include "engine/event_severity.h"

#include <rapidjson/document.h>

#include <string>

#include "engine/json_members.h"

namespace keel {
namespace {

// Kinds whose severity depends on their data; EventSeverity reads it.
enum class Rule {
  kFixed,             // the severity in the table
  kNodeFailed,        // error; warning when "optional": true
  kBreakerOpen,       // warning; critical at "reopens" >= kCriticalReopens
  kRunFinished,       // by "status": failed error; degraded, cancelled, interrupted warning
  kMapFinished,       // warning when "failed" > 0
  kFallbackFinished,  // warning unless "status" is succeeded or degraded
  kFallbackEvent,     // the wrapped event's, at most warning
};

struct Entry {
  std::string_view kind;
  Severity severity;  // kFixed's, else the mildest case
  Rule rule = Rule::kFixed;
};

constexpr Severity kInfo = Severity::kInfo;
constexpr Severity kWarning = Severity::kWarning;
constexpr Severity kError = Severity::kError;

// Every kind the engine, the nodes, the CLI and the service record.
constexpr Entry kTable[] = {
    // A run's life.
    {"run_started", kInfo},
    {"run_resumed", kInfo},
    {"rerun", kInfo},
    {"run_finished", kInfo, Rule::kRunFinished},
    {"run_interrupted", kWarning},  // stopped by a signal; a resume continues it
    {"run_cancelled", kWarning},
    {"auto_resumed", kWarning},   // its owner died or was interrupted
    {"budget_exceeded", kError},  // stops the run
    // A node's life.
    {"node_started", kInfo},
    {"attempt_started", kInfo},
    {"node_succeeded", kInfo},
    {"node_skipped", kInfo},
    {"node_waiting", kInfo},
    {"node_cancelled", kInfo},    // a consequence: what caused it has its own event
    {"node_fallback", kWarning},  // answered, but by its fallback
    {"node_failed", kError, Rule::kNodeFailed},
    // Policies.
    {"attempt_failed", kWarning},  // the policy stack decides what follows
    {"retry_scheduled", kInfo},    // the reaction; the failure is attempt_failed
    {"retry_budget_exhausted", kWarning},
    {"total_timeout", kWarning},
    {"circuit_rejected", kWarning},
    {"bulkhead_queued", kInfo},
    {"rate_limit_local", kInfo},
    {"fallback_started", kWarning},
    {"fallback_finished", kInfo, Rule::kFallbackFinished},
    {"fallback_event", kInfo, Rule::kFallbackEvent},
    {"join_satisfied", kInfo},
    {"hedge_started", kInfo},
    {"hedge_aborted", kInfo},
    // Circuit breakers.
    {"breaker_opened", kWarning, Rule::kBreakerOpen},
    {"breaker_reopened", kWarning, Rule::kBreakerOpen},
    {"breaker_half_open", kInfo},
    {"breaker_recovering", kInfo},
    {"breaker_closed", kInfo},
    {"breaker_forced_open", kWarning},  // by an operator
    {"breaker_disabled", kWarning},     // calls go through unguarded
    // Work and dynamic nodes.
    {"llm_call", kInfo},   // a failed call fails its attempt, which says so
    {"tool_call", kInfo},  // a tool's error goes back to the model
    {"checkpoint", kInfo},
    {"map_started", kInfo},
    {"map_finished", kInfo, Rule::kMapFinished},
    {"map_list_restored", kInfo},
    {"loop_iteration", kInfo},
    {"wait_started", kInfo},
    {"signal_taken", kInfo},
    {"wait_woken", kInfo},
};

const Entry* Find(std::string_view kind) {
  for (const Entry& entry : kTable) {
    if (entry.kind == kind) return &entry;
  }
  return nullptr;
}

Severity Decide(std::string_view kind, const rapidjson::Value& data);

// The severity of `entry` given its data.
Severity Apply(const Entry& entry, const rapidjson::Value& data) {
  switch (entry.rule) {
    case Rule::kFixed:
      return entry.severity;
    case Rule::kNodeFailed: {
      const rapidjson::Value* optional = JsonMember(data, "optional");
      return optional && optional->IsBool() && optional->GetBool() ? kWarning : kError;
    }
    case Rule::kBreakerOpen:
      return JsonNumber(data, "reopens") >= kCriticalReopens ? Severity::kCritical : kWarning;
    case Rule::kRunFinished: {
      std::string_view status = JsonString(data, "status");
      if (status == "failed") return kError;
      if (status == "degraded" || status == "cancelled" || status == "interrupted") return kWarning;
      return kInfo;
    }
    case Rule::kMapFinished:
      return JsonNumber(data, "failed") > 0 ? kWarning : kInfo;
    case Rule::kFallbackFinished: {
      std::string_view status = JsonString(data, "status");
      return status == "succeeded" || status == "degraded" ? kInfo : kWarning;
    }
    case Rule::kFallbackEvent: {
      std::string_view inner = JsonString(data, "event");
      if (inner == "fallback_event") return kInfo;  // never recorded nested
      const rapidjson::Value* wrapped = JsonMember(data, "data");
      static const rapidjson::Value kEmpty(rapidjson::kObjectType);
      Severity severity = Decide(inner, wrapped ? *wrapped : kEmpty);
      return severity > kWarning ? kWarning : severity;
    }
  }
  return entry.severity;
}

Severity Decide(std::string_view kind, const rapidjson::Value& data) {
  const Entry* entry = Find(kind);
  return entry ? Apply(*entry, data) : kInfo;
}

}  // namespace

std::string_view SeverityName(Severity severity) {
  switch (severity) {
    case Severity::kWarning:
      return "warning";
    case Severity::kError:
      return "error";
    case Severity::kCritical:
      return "critical";
    default:
      return "info";
  }
}

Severity EventSeverity(std::string_view kind, std::string_view data_json) {
  const Entry* entry = Find(kind);
  if (entry == nullptr) return kInfo;
  if (entry->rule == Rule::kFixed) return entry->severity;
  rapidjson::Document data;
  data.Parse(data_json.data(), data_json.size());
  if (data.HasParseError()) data.SetObject();
  return Apply(*entry, data);
}

bool IsKnownEventKind(std::string_view kind) { return Find(kind) != nullptr; }

}  // namespace keel
