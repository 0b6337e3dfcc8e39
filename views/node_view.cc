#include "views/node_view.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>

#include "engine/utf8.h"
#include "views/event_json.h"
#include "views/format.h"
#include "views/run_detail.h"
#include "views/run_status.h"

namespace keel {
namespace {

bool Finished(NodeStatus status) {
  return status != NodeStatus::kPending && status != NodeStatus::kRunning &&
         status != NodeStatus::kWaiting;
}

std::string KindByName(const std::string& node) {
  if (node.find('/') != std::string::npos || node.find('#') != std::string::npos) return "inner";
  if (!node.empty() && node.back() == ']') return "item";
  return "";
}

// The first `bytes` of `text`, not cutting a UTF-8 sequence.
std::string Preview(const std::string& text, size_t bytes) {
  if (text.size() <= bytes) return text;
  size_t end = bytes;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return ReplaceInvalidUtf8(text.substr(0, end));
}

// `json` as it is, or its truncation marker when over `cap`; `name` is
// added to `truncated` then.
void CappedValue(JsonOut* out, const std::optional<std::string>& json, size_t cap,
                 const std::string& name, std::vector<std::string>* truncated) {
  if (!json) {
    out->Null();
    return;
  }
  if (json->size() <= cap) {
    out->Raw(*json);
    return;
  }
  truncated->push_back(name);
  out->BeginObject();
  out->Key("$truncated").Int(static_cast<int64_t>(json->size()));
  out->Key("preview").String(Preview(*json, kPreviewBytes));
  out->EndObject();
}

std::string Serialize(const rapidjson::Value& value) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  value.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

// One llm_call event as the contract's llm_calls entry: its own fields and
// whatever request and reply it carries, passed through.
void WriteLlmCall(JsonOut* out, const EventRecord& e) {
  rapidjson::Document doc;
  doc.Parse(e.data_json.c_str(), e.data_json.size());
  bool object = !doc.HasParseError() && doc.IsObject();
  auto field = [&](const char* name) -> std::optional<std::string> {
    if (!object) return std::nullopt;
    auto it = doc.FindMember(name);
    if (it == doc.MemberEnd()) return std::nullopt;
    return Serialize(it->value);
  };
  out->BeginObject();
  out->Key("seq").Int(e.seq);
  out->Key("ts").TimeOrNull(e.ts);
  for (const char* name : {"provider", "model", "prompt_tokens", "completion_tokens", "cost",
                           "seconds", "outcome", "message", "request", "reply"}) {
    out->Key(name).Raw(field(name));
  }
  auto truncated = field("truncated");
  out->Key("truncated").Raw(truncated ? *truncated : std::string("false"));
  out->EndObject();
}

std::optional<std::string> OutputOf(const NodeRecord& record) {
  if (record.status == NodeStatus::kWaiting) return std::nullopt;
  return record.output_json;
}

std::string WhenText(double wall) { return wall > 0 ? UtcClock(wall, 0) : "-"; }

}  // namespace

Result<NodeView> ReadNodeView(Store& store, const std::string& run_id, const std::string& node,
                              const NodeShapeLookup& shape_of, double now) {
  auto run = store.GetRun(run_id);
  if (!run.ok()) return run.status();
  NodeView view;
  view.run = std::move(*run);
  view.run_label = RunStatusLabel(view.run, now);
  view.node = node;
  auto record = store.GetNode(view.run.id, node);
  if (!record.ok()) return record.status();
  view.record = std::move(*record);
  auto events = store.GetNodeEvents(view.run.id, node, kMaxNodeEvents + 1);
  if (!events.ok()) return events.status();
  view.events = std::move(*events);
  if (view.events.size() > static_cast<size_t>(kMaxNodeEvents)) {
    view.events.erase(view.events.begin());
    view.events_cut = true;
  }
  std::optional<NodeShape> shape;
  if (shape_of) shape = shape_of(view.run, node);
  if (!view.record && view.events.empty() && !shape) {
    return Status::Error(ErrorKind::kPermanent, "no node '" + node + "' in run " + view.run.id);
  }
  view.kind = shape ? shape->kind : KindByName(node);
  view.status = view.record ? NodeStatusLabel(*view.record, view.run_label) : "pending";
  std::vector<std::string> unfinished;
  if (shape) {
    for (const std::string& dep : shape->deps) {
      auto dep_record = store.GetNode(view.run.id, dep);
      if (!dep_record.ok()) return dep_record.status();
      if (!*dep_record || !Finished((*dep_record)->status)) unfinished.push_back(dep);
      // A dependency's output is its input only once it finished.
      std::optional<std::string> value;
      if (*dep_record && Finished((*dep_record)->status)) value = (*dep_record)->output_json;
      view.input.emplace_back(dep, std::move(value));
    }
  }
  const NodeRecord* rec = view.record ? &*view.record : nullptr;
  view.attempts = BuildLedger(view.events, rec, now);
  view.why = ExplainNode(view.status, rec, view.events, unfinished, view.run_label, now);
  return view;
}

void WriteNodeViewJson(JsonOut* out, const NodeView& view, size_t cap) {
  std::vector<std::string> truncated;
  out->BeginObject();
  out->Key("run_id").String(view.run.id);
  out->Key("node").String(view.node);
  out->Key("status").String(view.status);
  out->Key("kind").StringOrNull(view.kind);
  out->Key("attempts");
  out->BeginArray();
  for (const AttemptEntry& a : view.attempts) {
    out->BeginObject();
    out->Key("attempt").Int(a.attempt);
    out->Key("started_at").TimeOrNull(a.started_at);
    out->Key("finished_at").TimeOrNull(a.finished_at);
    std::optional<double> seconds;
    if (a.started_at > 0 && a.finished_at > 0)
      seconds = std::max(0.0, a.finished_at - a.started_at);
    out->Key("duration_s").Seconds(seconds);
    out->Key("outcome").String(a.outcome);
    out->Key("error_kind").StringOrNull(a.error_kind);
    out->Key("message").StringOrNull(a.message);
    out->Key("decided_by").StringOrNull(a.decided_by);
    out->Key("next").StringOrNull(a.next);
    out->EndObject();
  }
  out->EndArray();
  out->Key("why").StringOrNull(view.why);
  out->Key("input");
  out->BeginObject();
  for (const auto& [dep, value] : view.input) {
    out->Key(dep);
    CappedValue(out, value, cap, "input." + dep, &truncated);
  }
  out->EndObject();
  // A waiting node's record holds what it waits for (in `why`), not an output.
  out->Key("output");
  CappedValue(out, view.record ? OutputOf(*view.record) : std::nullopt, cap, "output", &truncated);
  out->Key("error").StringOrNull(view.record ? view.record->error_message : "");
  out->Key("started_at").TimeOrNull(view.record ? view.record->started_at : 0);
  out->Key("finished_at").TimeOrNull(view.record ? view.record->finished_at : 0);
  out->Key("truncated");
  out->BeginArray();
  for (const std::string& name : truncated) out->String(name);
  out->EndArray();
  out->Key("events");
  out->BeginArray();
  // The calls' recorded bodies are in llm_calls below, once.
  EventJsonOptions brief;
  brief.bodies = false;
  for (const EventRecord& e : view.events) WriteEventJson(out, e, brief);
  out->EndArray();
  // Older events were left out: the whole log is at GET runs/ID/events.
  out->Key("events_cut").Raw(view.events_cut ? "true" : "false");
  out->Key("llm_calls");
  out->BeginArray();
  for (const EventRecord& e : view.events) {
    if (e.kind == kUsageEventKind) WriteLlmCall(out, e);
  }
  out->EndArray();
  out->EndObject();
}

std::string NodeViewText(const NodeView& view) {
  std::string text = fmt::format("node {} of run {}: {}", view.node, view.run.id, view.status);
  if (!view.kind.empty()) text += " (" + view.kind + ")";
  text += "\n";
  if (!view.why.empty()) text += "why: " + view.why + "\n";
  if (view.record && !view.record->error_message.empty() && view.status != "skipped" &&
      view.status != "cancelled") {
    text += "error: " + view.record->error_message + "\n";
  }
  if (!view.attempts.empty()) text += "attempts:\n";
  for (const AttemptEntry& a : view.attempts) {
    text += fmt::format("  #{} {} {}", a.attempt, WhenText(a.started_at), a.outcome);
    if (a.started_at > 0 && a.finished_at > 0) {
      text += " after " + FormatDuration(std::max(0.0, a.finished_at - a.started_at));
    }
    if (!a.message.empty()) {
      text += ": " + (a.error_kind.empty() ? "" : a.error_kind + ": ") + a.message;
    }
    if (!a.next.empty()) text += " -> " + a.next;
    if (!a.decided_by.empty()) text += " [" + a.decided_by + "]";
    text += "\n";
  }
  for (const auto& [dep, value] : view.input) {
    text += fmt::format("input {}: {}\n", dep,
                        value ? Preview(*value, 200) + (value->size() > 200 ? " ..." : "")
                              : "(no output recorded)");
  }
  if (view.record && OutputOf(*view.record)) {
    const std::string& value = *view.record->output_json;
    text += "output: " + Preview(value, 2000) +
            (value.size() > 2000 ? fmt::format(" ... ({})", FormatBytes(value.size())) : "") + "\n";
  }
  int calls = 0;
  for (const EventRecord& e : view.events) calls += e.kind == kUsageEventKind ? 1 : 0;
  if (calls > 0) text += fmt::format("llm calls: {}\n", calls);
  text += fmt::format("events: {}{}\n", view.events.size(), view.events_cut ? " (newest)" : "");
  return text;
}

Result<std::string> NodeValue(const NodeView& view, const std::string& which,
                              const std::string& dep) {
  if (which == "output") {
    if (!view.record || !OutputOf(*view.record)) {
      return Status::Error(ErrorKind::kPermanent,
                           "node '" + view.node + "' has no output recorded");
    }
    return *view.record->output_json;
  }
  for (const auto& [name, value] : view.input) {
    if (name != dep) continue;
    if (!value) {
      return Status::Error(ErrorKind::kPermanent, "dependency '" + dep + "' of node '" + view.node +
                                                      "' has no output recorded");
    }
    return *value;
  }
  return Status::Error(ErrorKind::kPermanent,
                       "no dependency '" + dep + "' of node '" + view.node + "'");
}

}  // namespace keel
