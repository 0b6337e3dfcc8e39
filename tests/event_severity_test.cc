// engine/event_severity: every kind keel records has a rule, and the rules
// that read an event's data (optional nodes, breaker re-opens, run status,
// wrapped fallback events) decide by it.

#include "engine/event_severity.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "engine/circuit_breaker.h"

namespace keel {
namespace {

std::string_view Of(std::string_view kind, std::string_view data = "{}") {
  return SeverityName(EventSeverity(kind, data));
}

// The event kinds written as literals where the sources record events:
// Emit(i, "kind", ...), ctx.record("kind", ...), AppendEvent({..., "kind",
// ...}), `.kind = "kind"` and the finish kinds returned by name.
std::set<std::string> RecordedKinds() {
  const std::regex patterns[] = {
      std::regex(R"(Emit\([^,()]+,\s*"([a-z_]+)\")"),
      std::regex(R"(record\("([a-z_]+)\")"),
      std::regex(R"(AppendEvent\(\s*\{[^{}"]*"",\s*"([a-z_]+)\")"),
      std::regex(R"(EventRecord \w+\{[^{}"]*"",\s*"([a-z_]+)\")"),
      std::regex(R"(kind = "([a-z_]+)\";)"),
      std::regex(R"(return "(node_[a-z_]+|breaker_[a-z_]+)\";)"),
      std::regex(R"(\?\s*"((?:node|run)_[a-z_]+)\"\s*:\s*"((?:node|run)_[a-z_]+)\")"),
  };
  std::set<std::string> kinds;
  for (const char* dir : {"engine", "nodes", "cli", "service", "store"}) {
    for (const auto& entry :
         std::filesystem::recursive_directory_iterator(std::string(KEEL_SOURCE_DIR) + "/" + dir)) {
      if (entry.path().extension() != ".cc") continue;
      std::ifstream in(entry.path());
      std::stringstream text;
      text << in.rdbuf();
      const std::string source = text.str();
      for (const std::regex& pattern : patterns) {
        for (std::sregex_iterator it(source.begin(), source.end(), pattern), end; it != end; ++it) {
          for (size_t group = 1; group < it->size(); ++group) {
            if ((*it)[group].matched) kinds.insert((*it)[group].str());
          }
        }
      }
    }
  }
  return kinds;
}

TEST_CASE("every kind the sources record has a rule") {
  std::set<std::string> kinds = RecordedKinds();
  // The scan finds the kinds of every layer, or it is looking in the wrong place.
  for (std::string sample : {"node_failed", "retry_scheduled", "tool_call", "run_interrupted",
                             "auto_resumed", "run_resumed", "run_finished", "budget_exceeded"}) {
    CAPTURE(sample);
    CHECK(kinds.count(sample) == 1);
  }
  for (const std::string& kind : kinds) {
    CAPTURE(kind);
    CHECK(IsKnownEventKind(kind));
  }
  for (auto t : {BreakerTransition::kOpened, BreakerTransition::kHalfOpened,
                 BreakerTransition::kClosed, BreakerTransition::kReopened}) {
    CHECK(IsKnownEventKind(BreakerTransitionName(t)));
  }
}

TEST_CASE("a node's failure is an error, an optional node's a warning") {
  CHECK(Of("node_failed", R"({"kind":"transient","message":"503"})") == "error");
  CHECK(Of("node_failed", R"({"kind":"transient","optional":true})") == "warning");
  CHECK(Of("node_failed", R"({"optional":false})") == "error");
  CHECK(Of("node_failed", "not json") == "error");
  CHECK(Of("node_succeeded") == "info");
  CHECK(Of("node_fallback") == "warning");
  CHECK(Of("node_cancelled") == "info");
}

TEST_CASE("policy events") {
  CHECK(Of("attempt_failed", R"({"attempt":1,"kind":"timeout"})") == "warning");
  CHECK(Of("retry_scheduled") == "info");
  CHECK(Of("circuit_rejected") == "warning");
  CHECK(Of("total_timeout") == "warning");
  CHECK(Of("retry_budget_exhausted") == "warning");
  CHECK(Of("fallback_started") == "warning");
  CHECK(Of("fallback_finished", R"({"status":"succeeded"})") == "info");
  CHECK(Of("fallback_finished", R"({"status":"failed"})") == "warning");
  CHECK(Of("budget_exceeded") == "error");
  CHECK(Of("map_finished", R"({"items":3,"failed":0})") == "info");
  CHECK(Of("map_finished", R"({"items":3,"failed":1})") == "warning");
}

TEST_CASE("a breaker opening is a warning, critical once it has re-opened 3 times in a row") {
  CHECK(Of("breaker_opened", R"({"key":"openai"})") == "warning");
  CHECK(Of("breaker_reopened", R"({"key":"openai"})") == "warning");
  CHECK(Of("breaker_reopened", R"({"key":"openai","reopens":2})") == "warning");
  CHECK(Of("breaker_reopened", R"({"key":"openai","reopens":3})") == "critical");
  CHECK(Of("breaker_reopened", R"({"key":"openai","reopens":7})") == "critical");
  CHECK(Of("breaker_opened", R"({"key":"openai","reopens":3})") == "critical");
  CHECK(Of("breaker_reopened", R"({"reopens":"many"})") == "warning");
  CHECK(Of("breaker_half_open") == "info");
  CHECK(Of("breaker_recovering") == "info");
  CHECK(Of("breaker_closed") == "info");
  CHECK(Of("breaker_forced_open") == "warning");
  CHECK(Of("breaker_disabled") == "warning");
}

TEST_CASE("a run's end by its status") {
  CHECK(Of("run_finished", R"({"status":"succeeded"})") == "info");
  CHECK(Of("run_finished", R"({"status":"waiting"})") == "info");
  CHECK(Of("run_finished", R"({"status":"degraded"})") == "warning");
  CHECK(Of("run_finished", R"({"status":"cancelled"})") == "warning");
  CHECK(Of("run_finished", R"({"status":"failed","error":"x"})") == "error");
  CHECK(Of("run_interrupted") == "warning");
  CHECK(Of("run_started") == "info");
}

TEST_CASE("a fallback workflow's event is as severe as the one it wraps, at most a warning") {
  CHECK(Of("fallback_event",
           R"({"fallback":"fb","node":"x","event":"node_failed","data":{"kind":"error"}})") ==
        "warning");
  CHECK(Of("fallback_event", R"({"fallback":"fb","node":"x","event":"breaker_reopened",)"
                             R"("data":{"reopens":5}})") == "warning");
  CHECK(Of("fallback_event", R"({"fallback":"fb","node":"x","event":"llm_call","data":{}})") ==
        "info");
  CHECK(Of("fallback_event", R"({"event":"node_failed"})") == "warning");
  CHECK(Of("fallback_event", "{}") == "info");
}

TEST_CASE("kinds the table does not know are info") {
  CHECK_FALSE(IsKnownEventKind("something_new"));
  CHECK(Of("something_new", R"({"optional":true})") == "info");
  CHECK(Of("") == "info");
}

}  // namespace
}  // namespace keel
