#include "telemetry/run_tracer.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "engine/status.h"

namespace keel::telemetry {
namespace {

// Events past this many on one span are left out (OpenTelemetry SDKs' default
// span limit), so a chatty node cannot make a span without bound.
constexpr size_t kMaxEventsPerSpan = 128;

uint64_t Fnv1a(std::string_view text, uint64_t hash = 14695981039346656037ull) {
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

std::string Hex64(uint64_t value) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(value));
  return text;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t WallToNs(double seconds) { return static_cast<int64_t>(seconds * 1e9); }

// The kinds the tracer reads for itself rather than copying as span events.
bool Structural(std::string_view kind) {
  return kind == "node_started" || kind == "attempt_started" || kind == "node_succeeded" ||
         kind == "node_failed" || kind == "node_skipped" || kind == "node_cancelled" ||
         kind == "node_fallback" || kind == "node_waiting";
}

// The scalar members of a JSON object as attributes; nested values are left out.
std::vector<Attribute> ScalarAttributes(const rapidjson::Value& object) {
  std::vector<Attribute> out;
  if (!object.IsObject()) return out;
  for (const auto& m : object.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    const rapidjson::Value& v = m.value;
    if (v.IsString()) {
      out.push_back({std::move(key), std::string(v.GetString(), v.GetStringLength())});
    } else if (v.IsBool()) {
      out.push_back({std::move(key), v.GetBool()});
    } else if (v.IsInt64()) {
      out.push_back({std::move(key), v.GetInt64()});
    } else if (v.IsNumber()) {
      out.push_back({std::move(key), v.GetDouble()});
    }
  }
  return out;
}

std::string Member(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return "";
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

double Number(const rapidjson::Value& object, const char* name) {
  if (!object.IsObject()) return 0;
  auto it = object.FindMember(name);
  return it != object.MemberEnd() && it->value.IsNumber() ? it->value.GetDouble() : 0;
}

void SetError(Span& span, std::string type, std::string message) {
  span.status = SpanStatus::kError;
  span.status_message = std::move(message);
  span.attributes.push_back({"error.type", std::move(type)});
}

// "host:port", "[::1]:8080" or "host" -> server.address (and server.port).
void AddServer(Span& span, const std::string& server) {
  if (server.empty()) return;
  std::string host = server;
  int64_t port = 0;
  size_t colon = server.rfind(':');
  size_t bracket = server.rfind(']');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    host = server.substr(0, colon);
    port = std::strtoll(server.c_str() + colon + 1, nullptr, 10);
  }
  if (host.size() > 1 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  span.attributes.push_back({"server.address", host});
  if (port > 0) span.attributes.push_back({"server.port", port});
}

}  // namespace

std::string TraceIdOfRun(std::string_view run_id) {
  return Hex64(Fnv1a(run_id, Fnv1a("keel trace "))) + Hex64(Fnv1a(run_id, Fnv1a("keel id ")));
}

std::string RootSpanIdOfRun(std::string_view run_id) {
  uint64_t id = Fnv1a(run_id, Fnv1a("keel run span "));
  return Hex64(id == 0 ? 1 : id);
}

RunTracer::RunTracer(const WorkflowSpec& workflow, bool resuming, SpanSink sink)
    : workflow_(workflow), resuming_(resuming), sink_(std::move(sink)) {
  MutexLock lock(&mu_);
  rng_.seed(std::random_device{}() ^ static_cast<uint64_t>(NowNs()));
}

std::string RunTracer::NewSpanId() {
  uint64_t id = 0;
  while (id == 0) id = rng_();
  return Hex64(id);
}

void RunTracer::OnRunStarted(const RunInfo& info) {
  MutexLock lock(&mu_);
  run_started_ = true;
  run_id_ = info.run_id;
  run_.trace_id = TraceIdOfRun(info.run_id);
  if (resuming_) {
    run_.span_id = NewSpanId();
    run_.parent_span_id = RootSpanIdOfRun(info.run_id);
  } else {
    run_.span_id = RootSpanIdOfRun(info.run_id);
  }
  run_.name = "invoke_workflow " + info.workflow;
  run_.kind = SpanKind::kInternal;
  run_.start_ns = NowNs();
  run_.attributes = {{"gen_ai.operation.name", std::string("invoke_workflow")},
                     {"gen_ai.workflow.name", info.workflow},
                     {"keel.run.id", info.run_id},
                     {"keel.workflow", info.workflow},
                     {"keel.resumed", resuming_},
                     {"keel.nodes", static_cast<int64_t>(info.node_count)},
                     {"keel.nodes.kept", static_cast<int64_t>(info.restored)}};
}

Span RunTracer::AttemptSpan(std::string_view node, int attempt, int64_t start_ns) {
  // Nodes of a map's items or a called workflow carry a prefix ("map[3]/x").
  std::string name(node);
  int index = workflow_.Find(name);
  if (index < 0) {
    size_t slash = name.rfind('/');
    if (slash != std::string::npos) index = workflow_.Find(name.substr(slash + 1));
  }
  std::string kind = index >= 0 ? workflow_.nodes[index].kind : "fn";
  bool agent = kind == "agent";
  Span span;
  span.trace_id = run_.trace_id;
  span.span_id = NewSpanId();
  span.parent_span_id = run_.span_id;
  span.name = (agent ? "invoke_agent " : "execute_tool ") + name;
  span.kind = SpanKind::kInternal;
  span.start_ns = start_ns;
  span.attributes = {{"gen_ai.operation.name", std::string(agent ? "invoke_agent" : "execute_tool")},
                     {agent ? "gen_ai.agent.name" : "gen_ai.tool.name", name},
                     {"keel.node", name},
                     {"keel.node.kind", kind},
                     {"keel.attempt", static_cast<int64_t>(attempt)},
                     {"keel.run.id", run_id_}};
  return span;
}

void RunTracer::AddEvent(NodeSpans& spans, SpanEvent event) {
  std::vector<SpanEvent>& events = spans.has_span ? spans.span.events : spans.early;
  if (events.size() < kMaxEventsPerSpan) events.push_back(std::move(event));
}

void RunTracer::OnNodeStarted(std::string_view node, int attempt) {
  std::vector<Span> done;
  {
    MutexLock lock(&mu_);
    if (!run_started_) return;
    NodeSpans& spans = nodes_[std::string(node)];
    int64_t now = NowNs();
    if (spans.has_span) {
      if (spans.open) spans.span.end_ns = now;  // an attempt that never reported its end
      done.push_back(std::move(spans.span));
    }
    spans.span = AttemptSpan(node, attempt, now);
    spans.has_span = true;
    spans.open = true;
    for (SpanEvent& e : spans.early) spans.span.events.push_back(std::move(e));
    spans.early.clear();
  }
  for (Span& s : done) sink_(std::move(s));
}

Span RunTracer::ChatSpan(const std::string& parent, std::string_view data_json, double ts) {
  rapidjson::Document doc;
  doc.Parse(data_json.data(), data_json.size());
  const rapidjson::Value& data = doc;
  std::string model = Member(data, "model");
  std::string request_model = Member(data, "request_model");
  if (request_model.empty()) request_model = model;
  std::string kind = Member(data, "provider_kind");
  if (kind.empty()) kind = Member(data, "provider");
  Span span;
  span.trace_id = run_.trace_id;
  span.span_id = NewSpanId();
  span.parent_span_id = parent;
  span.name = "chat " + request_model;
  span.kind = SpanKind::kClient;
  span.end_ns = WallToNs(ts);
  span.start_ns = span.end_ns - WallToNs(Number(data, "seconds"));
  span.attributes = {{"gen_ai.operation.name", std::string("chat")},
                     {"gen_ai.provider.name", kind},
                     {"gen_ai.system", kind},
                     {"gen_ai.request.model", request_model},
                     {"gen_ai.usage.input_tokens", static_cast<int64_t>(Number(data, "prompt_tokens"))},
                     {"gen_ai.usage.output_tokens",
                      static_cast<int64_t>(Number(data, "completion_tokens"))},
                     {"keel.provider", Member(data, "provider")},
                     {"keel.cost", Number(data, "cost")},
                     {"keel.queued_seconds", Number(data, "queued")},
                     {"keel.hedge", static_cast<int64_t>(Number(data, "hedge"))}};
  AddServer(span, Member(data, "server"));
  if (int status = static_cast<int>(Number(data, "http_status")); status > 0) {
    span.attributes.push_back({"http.response.status_code", static_cast<int64_t>(status)});
  }
  std::string outcome = Member(data, "outcome");
  if (outcome.empty() || outcome == "ok") {
    if (!model.empty()) span.attributes.push_back({"gen_ai.response.model", model});
    std::string finish = Member(data, "finish_reason");
    if (!finish.empty()) span.attributes.push_back({"keel.finish_reason", finish});
  } else {
    SetError(span, outcome, Member(data, "message"));
  }
  return span;
}

void RunTracer::OnEvent(std::string_view node, std::string_view kind, std::string_view data_json,
                        double ts) {
  if (node.empty() || Structural(kind)) return;
  std::vector<Span> done;
  {
    MutexLock lock(&mu_);
    if (!run_started_) return;
    NodeSpans& spans = nodes_[std::string(node)];
    std::string inner_kind(kind);
    std::string inner_data(data_json);
    std::string fallback;
    if (kind == "fallback_event") {
      // A fallback workflow's node: its LLM calls are chat spans of this
      // node; its other events are this node's, named "fallback.KIND".
      rapidjson::Document doc;
      doc.Parse(data_json.data(), data_json.size());
      inner_kind = Member(doc, "event");
      fallback = Member(doc, "fallback") + "/" + Member(doc, "node");
      auto it = doc.IsObject() ? doc.FindMember("data") : doc.MemberEnd();
      if (doc.IsObject() && it != doc.MemberEnd() && it->value.IsObject()) {
        rapidjson::StringBuffer buffer;
        rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
        it->value.Accept(w);
        inner_data.assign(buffer.GetString(), buffer.GetSize());
      } else {
        inner_data = "{}";
      }
      if (Structural(inner_kind) || inner_kind == "attempt_failed") inner_kind.clear();
    }
    if (inner_kind == "llm_call") {
      const std::string& parent = spans.has_span ? spans.span.span_id : run_.span_id;
      Span chat = ChatSpan(parent, inner_data, ts);
      if (!fallback.empty()) chat.attributes.push_back({"keel.fallback.node", fallback});
      done.push_back(std::move(chat));
    } else if (!inner_kind.empty()) {
      rapidjson::Document doc;
      doc.Parse(inner_data.data(), inner_data.size());
      SpanEvent event;
      event.time_ns = WallToNs(ts);
      event.attributes = ScalarAttributes(doc);
      if (!fallback.empty()) {
        event.name = "fallback." + inner_kind;
        event.attributes.push_back({"keel.fallback.node", fallback});
      } else if (inner_kind == "attempt_failed") {
        std::string error = Member(doc, "kind");
        event.name = error == "timeout" ? "timeout" : "attempt_failed";
        if (spans.has_span && spans.open) {
          spans.span.end_ns = WallToNs(ts);
          spans.open = false;
          SetError(spans.span, error, Member(doc, "message"));
        }
      } else {
        event.name = inner_kind;
      }
      AddEvent(spans, std::move(event));
    }
  }
  for (Span& s : done) sink_(std::move(s));
}

void RunTracer::OnNodeFinished(std::string_view node, const NodeResult& result, double seconds) {
  std::vector<Span> done;
  {
    MutexLock lock(&mu_);
    if (!run_started_) return;
    auto it = nodes_.find(std::string(node));
    int64_t now = NowNs();
    bool ran = it != nodes_.end() && (it->second.has_span || !it->second.early.empty());
    bool failed = result.status == NodeStatus::kFailed || result.status == NodeStatus::kFallback;
    if (!ran && !failed) {
      if (it != nodes_.end()) nodes_.erase(it);
      return;  // skipped, cancelled before it ran, or a wait that is parked
    }
    if (it == nodes_.end()) it = nodes_.emplace(std::string(node), NodeSpans{}).first;
    NodeSpans& spans = it->second;
    if (!spans.has_span) {
      // No attempt ran (a circuit rejection): one span for the node's outcome.
      spans.span = AttemptSpan(node, 0, now - WallToNs(seconds));
      spans.span.events = std::move(spans.early);
      spans.has_span = true;
      spans.open = true;
    }
    Span& span = spans.span;
    if (spans.open) {
      span.end_ns = now;
      if (!result.error.ok() && span.status != SpanStatus::kError &&
          result.status != NodeStatus::kSucceeded) {
        SetError(span, std::string(ErrorKindName(result.error.kind())), result.error.message());
      }
    }
    if (span.status == SpanStatus::kUnset && result.status == NodeStatus::kSucceeded) {
      span.status = SpanStatus::kOk;
    }
    span.attributes.push_back({"keel.node.status", std::string(NodeStatusName(result.status))});
    done.push_back(std::move(span));
    nodes_.erase(it);
  }
  for (Span& s : done) sink_(std::move(s));
}

void RunTracer::OnRunFinished(RunStatus status) {
  std::vector<Span> done;
  {
    MutexLock lock(&mu_);
    if (!run_started_) return;
    int64_t now = NowNs();
    // Attempts still open (a parked wait, an interrupted run) end with the run.
    for (auto& [name, spans] : nodes_) {
      if (!spans.has_span) continue;
      if (spans.open) spans.span.end_ns = now;
      done.push_back(std::move(spans.span));
    }
    nodes_.clear();
    run_.end_ns = now;
    run_.attributes.push_back({"keel.run.status", std::string(RunStatusName(status))});
    if (status == RunStatus::kFailed || status == RunStatus::kCancelled ||
        status == RunStatus::kInterrupted) {
      SetError(run_, std::string(RunStatusName(status)),
               "run " + std::string(RunStatusName(status)));
    } else if (status == RunStatus::kSucceeded || status == RunStatus::kDegraded) {
      run_.status = SpanStatus::kOk;
    }
    done.push_back(std::move(run_));
    run_started_ = false;
  }
  for (Span& s : done) sink_(std::move(s));
}

}  // namespace keel::telemetry
