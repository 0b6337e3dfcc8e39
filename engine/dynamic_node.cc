// Dynamic nodes: JSON helpers, load-time checks across workflows, and how a
// map, call or loop node starts (RunState::StartDynamic).

#include "engine/dynamic_node.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <functional>
#include <unordered_map>

#include "engine/did_you_mean.h"
#include "engine/dynamic_run.h"
#include "engine/event_data.h"
#include "engine/run_state.h"

namespace keel {
namespace {

// How a map checkpoints the list `over` returned: {"map_list":[...]}.
constexpr std::string_view kMapListKey = "{\"map_list\":";

size_t SkipSpace(std::string_view s, size_t i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
  return i;
}

// The end of the JSON value starting at s[i] (valid JSON assumed).
size_t ValueEnd(std::string_view s, size_t i) {
  int depth = 0;
  bool in_string = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
        if (depth == 0) return i + 1;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      if (depth == 0) return i;  // the enclosing array's end
      if (--depth == 0) return i + 1;
    } else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r')) {
      return i;
    }
  }
  return i;
}

const char* JsonTypeName(std::string_view json) {
  size_t i = SkipSpace(json, 0);
  if (i >= json.size()) return "nothing";
  switch (json[i]) {
    case '{':
      return "an object";
    case '"':
      return "a string";
    case 'n':
      return "null (nil)";
    case 't':
    case 'f':
      return "a boolean";
    default:
      return "a number";
  }
}

}  // namespace

bool SplitJsonArray(std::string_view json, std::vector<std::pair<size_t, size_t>>* spans) {
  spans->clear();
  size_t i = SkipSpace(json, 0);
  if (i < json.size() && json[i] == '{') {
    size_t j = SkipSpace(json, i + 1);
    return j < json.size() && json[j] == '}';
  }
  if (i >= json.size() || json[i] != '[') return false;
  i = SkipSpace(json, i + 1);
  if (i < json.size() && json[i] == ']') return true;
  while (i < json.size()) {
    size_t end = ValueEnd(json, i);
    spans->emplace_back(i, end);
    i = SkipSpace(json, end);
    if (i >= json.size() || json[i] != ',') break;
    i = SkipSpace(json, i + 1);
  }
  return true;
}

JsonText MergeJsonObjects(const JsonText& defaults, const JsonText& overrides) {
  rapidjson::Document doc;
  doc.Parse(defaults ? defaults->c_str() : "{}");
  if (doc.HasParseError() || !doc.IsObject()) doc.SetObject();
  if (overrides) {
    rapidjson::Document more(&doc.GetAllocator());
    more.Parse(overrides->c_str());
    if (!more.HasParseError() && more.IsObject()) {
      for (auto& m : more.GetObject()) {
        auto it = doc.FindMember(m.name);
        if (it != doc.MemberEnd()) {
          it->value = m.value;
        } else {
          doc.AddMember(m.name, m.value, doc.GetAllocator());
        }
      }
    }
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  doc.Accept(w);
  return MakeJson(std::string(buf.GetString(), buf.GetSize()));
}

std::vector<Diagnostic> ValidateDynamic(const std::vector<WorkflowSpec>& workflows) {
  std::vector<Diagnostic> out;
  std::unordered_map<std::string, int> index;
  std::vector<std::string_view> names;
  for (size_t i = 0; i < workflows.size(); ++i) {
    index.emplace(workflows[i].name, static_cast<int>(i));
    names.push_back(workflows[i].name);
  }
  // calls[w]: the workflows nodes of w run, with the node that runs each.
  std::vector<std::vector<std::pair<int, const NodeSpec*>>> calls(workflows.size());
  for (size_t w = 0; w < workflows.size(); ++w) {
    for (const NodeSpec& node : workflows[w].nodes) {
      if (!node.dynamic || node.dynamic->workflow.empty()) continue;
      const std::string& target = node.dynamic->workflow;
      auto it = index.find(target);
      if (it == index.end()) {
        out.push_back({node.where, node.name,
                       "workflow '" + target + "' is not declared in this file" +
                           DidYouMean(target, names, std::max<size_t>(2, target.size() / 3))});
        continue;
      }
      if (OutputNode(workflows[it->second]) < 0) {
        out.push_back({node.where, node.name,
                       "workflow '" + target +
                           "' has no output: name a node 'output' or give it a single final node"});
      }
      calls[w].emplace_back(it->second, &node);
    }
  }
  // A workflow that runs itself, directly or through others, never ends.
  const int n = static_cast<int>(workflows.size());
  std::vector<int> color(n, 0);
  std::vector<int> path;
  std::function<bool(int)> visit = [&](int w) {
    color[w] = 1;
    path.push_back(w);
    for (const auto& [c, node] : calls[w]) {
      if (color[c] == 1) {
        std::string chain;
        auto from = std::find(path.begin(), path.end(), c);
        for (auto p = from; p != path.end(); ++p) chain += workflows[*p].name + " -> ";
        chain += workflows[c].name;
        out.push_back({node->where, node->name,
                       "workflow '" + workflows[c].name + "' runs itself: " + chain});
        return true;
      }
      if (color[c] == 0 && visit(c)) return true;
    }
    path.pop_back();
    color[w] = 2;
    return false;
  };
  for (int w = 0; w < n; ++w) {
    if (color[w] == 0 && visit(w)) break;
  }
  return out;
}

Status ChildFailure(RunState& child) {
  MutexLock lock(&child.mu_);
  for (const auto& [i, message] : child.errors_) {
    if (child.Excused(i)) continue;
    return Status::Error(child.slots_[i].result.error.kind(), message);
  }
  if (child.env_->stopped.load(std::memory_order_acquire)) {
    MutexLock spend(&child.env_->spend_mu);
    return Status::Error(ErrorKind::kCancelled, "run stopped: " + child.env_->stop_reason);
  }
  return Status::Error(ErrorKind::kError, "the workflow failed");
}

JsonText RecordedMapList(const std::vector<JsonText>& journal) {
  for (const JsonText& step : journal) {
    if (!step || !step->starts_with(kMapListKey)) continue;
    rapidjson::Document doc;
    doc.Parse(step->c_str(), step->size());
    if (doc.HasParseError() || !doc.IsObject()) continue;
    auto list = doc.FindMember("map_list");
    if (list == doc.MemberEnd() || !list->value.IsArray()) continue;
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    list->value.Accept(writer);
    return MakeJson(std::string(buffer.GetString(), buffer.GetSize()));
  }
  return nullptr;
}

void RunState::StartDynamic(int i) {
  Slot& slot = slots_[i];
  const NodeSpec& spec = wf_.nodes[i];
  int attempt;
  NodeContext* ctx;
  double started_wall;
  JsonText recorded_list;  // a map's list, as an earlier attempt checkpointed it
  {
    MutexLock lock(&slot.mu);
    if (spec.dynamic->kind == DynamicNode::Kind::kMap) recorded_list = RecordedMapList(slot.journal);
    attempt = ++slot.attempts;
    slot.token = std::make_shared<CancelToken>();
    ctx = slot.ctx.get();
    ctx->attempt = attempt;
    ctx->cancel = slot.token.get();
    slot.phase = Phase::kAttempt;
    started_wall = slot.started_wall;
  }
  RecordStarted(i, attempt, started_wall);
  env_->reserve();
  const bool from_journal = recorded_list != nullptr;
  auto started = [this, i, env = env_, from_journal](NodeResult value) {
    const NodeSpec& node = wf_.nodes[i];
    const DynamicNode& dyn = *node.dynamic;
    const char* what = dyn.kind == DynamicNode::Kind::kMap    ? "map"
                       : dyn.kind == DynamicNode::Kind::kCall ? "call"
                                                              : "loop";
    std::string prefix = node.where + ": " + what + " '" + RecordName(i) + "': ";
    if (value.status != NodeStatus::kSucceeded) {
      Finish(i, std::move(value));
      env->release();
      return;
    }
    const WorkflowSpec* target = nullptr;
    if (!dyn.workflow.empty() && env_->options->library) {
      for (const auto& wf : *env_->options->library) {
        if (wf.name == dyn.workflow) target = &wf;
      }
    }
    std::unique_ptr<DynamicRun> run;
    std::string problem;
    if (!dyn.workflow.empty() && target == nullptr) {
      problem = "workflow '" + dyn.workflow + "' is not available";
    } else if (dyn.kind == DynamicNode::Kind::kMap) {
      std::vector<std::pair<size_t, size_t>> spans;
      const char* got = value.output ? JsonTypeName(*value.output) : "nothing";
      if (!value.output || !SplitJsonArray(*value.output, &spans)) {
        problem = std::string("`over` must return a list (a JSON array), got ") + got;
      } else {
        if (!from_journal) Checkpoint(i, MakeJson(std::string(kMapListKey) + *value.output + "}"));
        run = std::make_unique<MapRun>(this, i, std::move(value.output), std::move(spans));
      }
    } else {
      const std::string* out = value.output.get();
      if (out && *out != "null" && !out->starts_with("{")) {
        problem =
            std::string("`params` must return a table of name = value, got ") + JsonTypeName(*out);
      } else {
        run = std::make_unique<SubWorkflowRun>(this, i, target, std::move(value.output));
      }
    }
    if (!problem.empty()) {
      Finish(i, NodeResult::Failure(Status::Error(ErrorKind::kPermanent, prefix + problem)));
      env->release();
      return;
    }
    DynamicRun* raw = run.get();
    {
      MutexLock lock(&mu_);
      dynamic_.push_back(std::move(run));
    }
    if (auto* map = dynamic_cast<MapRun*>(raw)) {
      map->Begin();
    } else {
      static_cast<SubWorkflowRun*>(raw)->Begin();
    }
    env->release();
  };
  if (from_journal) {
    // Items are numbered by this list: the one `over` gave before is used
    // again, so that a resume never pairs recorded items with a different list.
    Emit(i, "map_list_restored", "{}");
    started(NodeResult::Success(std::move(recorded_list)));
    return;
  }
  spec.dynamic->start->Call(*ctx, nullptr, std::move(started));
}

}  // namespace keel
