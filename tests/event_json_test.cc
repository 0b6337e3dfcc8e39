// views/event_json: the brief form (bodies = false) that the live stream and
// the API's event lists use leaves out an llm call's recorded request and
// reply — direct, or wrapped by a fallback workflow — and nothing else; every
// event carries its severity.

#include "views/event_json.h"

#include <doctest/doctest.h>

#include <string>

#include "views/json_out.h"

namespace keel {
namespace {

std::string Written(const EventRecord& event, bool bodies) {
  EventJsonOptions options;
  options.bodies = bodies;
  JsonOut out;
  WriteEventJson(&out, event, options);
  return out.Text();
}

EventRecord Event(std::string kind, std::string data) {
  return EventRecord{"r1", 7, 1764900000.0, "writer", std::move(kind), std::move(data)};
}

const char kCall[] =
    R"({"provider":"fast","prompt_tokens":3,"request":{"messages":[{"role":"user","content":"hi"}]},)"
    R"("reply":{"content":"hello"}})";

TEST_CASE("the brief form drops an llm call's request and reply and says they were recorded") {
  EventRecord call = Event("llm_call", kCall);
  std::string brief = Written(call, false);
  CHECK(brief.find("\"request\"") == std::string::npos);
  CHECK(brief.find("\"reply\"") == std::string::npos);
  CHECK(brief.find(R"("provider":"fast","prompt_tokens":3,"recorded":true)") != std::string::npos);
  std::string full = Written(call, true);
  CHECK(full.find(R"("reply":{"content":"hello"})") != std::string::npos);
}

TEST_CASE("the brief form reaches into a fallback workflow's wrapped llm call") {
  EventRecord wrapped = Event(
      "fallback_event",
      std::string(R"({"fallback":"fb","node":"ask","event":"llm_call","data":)") + kCall + "}");
  std::string brief = Written(wrapped, false);
  CHECK(brief.find("\"request\"") == std::string::npos);
  CHECK(brief.find("\"recorded\":true") != std::string::npos);
  CHECK(brief.find(R"("fallback":"fb")") != std::string::npos);
}

TEST_CASE("the brief form leaves every other event as recorded") {
  // A node's own event that happens to carry fields named request/reply.
  EventRecord other = Event("checkpoint", R"({"request":1,"reply":2})");
  CHECK(Written(other, false) == Written(other, true));
  EventRecord wrapped_other = Event(
      "fallback_event", R"({"fallback":"fb","node":"x","event":"checkpoint","data":{"reply":1}})");
  CHECK(Written(wrapped_other, false) == Written(wrapped_other, true));
  EventRecord no_bodies = Event("llm_call", R"({"provider":"fast"})");
  CHECK(Written(no_bodies, false) == Written(no_bodies, true));
  EventRecord broken = Event("llm_call", R"({"request": )");
  CHECK(Written(broken, false) == Written(broken, true));
}

TEST_CASE("every event carries its severity, after its kind") {
  CHECK(Written(Event("node_failed", R"({"kind":"error","optional":true})"), true)
            .find(R"("kind":"node_failed","severity":"warning","data":)") != std::string::npos);
  CHECK(Written(Event("node_failed", R"({"kind":"error"})"), false)
            .find(R"("severity":"error")") != std::string::npos);
  CHECK(Written(Event("breaker_reopened", R"({"key":"k","reopens":3})"), false)
            .find(R"("severity":"critical")") != std::string::npos);
  CHECK(Written(Event("llm_call", kCall), false).find(R"("severity":"info")") !=
        std::string::npos);
}

}  // namespace
}  // namespace keel
