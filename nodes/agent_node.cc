#include "nodes/agent_node.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <atomic>
#include <map>
#include <optional>

#include "engine/event_data.h"
#include "engine/mutex.h"
#include "nodes/json_document.h"
#include "nodes/provider.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

using rapidjson::Document;
using rapidjson::Value;
using wire::Serialize;

std::string JsonString(const std::string& text) {
  Value v(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
  return Serialize(v);
}

// A tool's output as the text the model reads: strings as they are, other
// values as JSON.
std::string ToolContent(const JsonText& output) {
  if (!output) return "null";
  JsonDocument doc;
  doc.Parse(output->c_str(), output->size());
  if (!doc.HasParseError() && doc.IsString()) return doc.GetString();
  return *output;
}

// One attempt of one agent node. Owned by shared_ptrs held by whatever drives
// it next (a posted step, an LLM call, a tool run, the hedge timer, the
// cancel subscription); it lives until the last of them lets go. ctx_ is
// only touched until finished_ is set.
class AgentRun : public std::enable_shared_from_this<AgentRun> {
 public:
  AgentRun(const std::shared_ptr<LlmClient>& client, const AgentSpec& spec,
           const std::shared_ptr<ToolRunner>& tools, const NodeContext& ctx, NodeCompletion done)
      : client_(client), spec_(spec), tools_(tools), ctx_(ctx), done_(std::move(done)) {
    messages_.SetArray();
  }

  void Begin() {
    if (ctx_.cancel != nullptr) {
      std::weak_ptr<AgentRun> weak = shared_from_this();
      subscription_ = ctx_.cancel->Subscribe([weak] {
        if (auto self = weak.lock()) self->AbortHedges();
      });
    }
    Status rendered = Render();
    if (!rendered.ok()) return Finish(NodeResult::Failure(rendered));
    std::vector<ToolCall> pending = Replay();
    if (!pending.empty()) return RunTools(std::move(pending));
    CallModel();
  }

 private:
  // --- Conversation ---

  Status Render() {
    if (!spec_.system.empty()) {
      auto system = spec_.system.Render(ctx_.params, ctx_.deps, ctx_.item, ctx_.index);
      if (!system.ok()) return Status::Error(ErrorKind::kPermanent, "system: " + system.status().message());
      system_ = std::move(system).value();
    }
    auto& alloc = messages_.GetAllocator();
    for (const auto& [role, content] : spec_.messages) {
      auto text = content.Render(ctx_.params, ctx_.deps, ctx_.item, ctx_.index);
      if (!text.ok()) return Status::Error(ErrorKind::kPermanent, "messages: " + text.status().message());
      Value m(rapidjson::kObjectType);
      m.AddMember("role", Value(role.c_str(), alloc), alloc);
      m.AddMember("content", Value(text->c_str(), alloc), alloc);
      messages_.PushBack(m, alloc);
    }
    if (!spec_.prompt.empty()) {
      auto text = spec_.prompt.Render(ctx_.params, ctx_.deps, ctx_.item, ctx_.index);
      if (!text.ok()) return Status::Error(ErrorKind::kPermanent, "prompt: " + text.status().message());
      Value m(rapidjson::kObjectType);
      m.AddMember("role", "user", alloc);
      m.AddMember("content", Value(text->c_str(), alloc), alloc);
      messages_.PushBack(m, alloc);
    }
    return Status::Ok();
  }

  void AppendMessage(const std::string& json) {
    Document doc(&messages_.GetAllocator());
    doc.Parse(json.c_str(), json.size());
    if (doc.HasParseError()) return;
    messages_.PushBack(Value(doc, messages_.GetAllocator()), messages_.GetAllocator());
  }

  void AppendToolResult(const std::string& id, const std::string& content) {
    auto& alloc = messages_.GetAllocator();
    Value m(rapidjson::kObjectType);
    m.AddMember("role", "tool", alloc);
    m.AddMember("tool_call_id", Value(id.c_str(), alloc), alloc);
    m.AddMember("content", Value(content.c_str(), alloc), alloc);
    messages_.PushBack(m, alloc);
  }

  static std::vector<ToolCall> CallsOf(const Value& assistant) {
    std::vector<ToolCall> calls;
    auto it = assistant.FindMember("tool_calls");
    if (it == assistant.MemberEnd() || !it->value.IsArray()) return calls;
    for (const Value& c : it->value.GetArray()) {
      if (!c.IsObject() || !c.HasMember("id") || !c["id"].IsString()) continue;
      ToolCall call;
      call.id = c["id"].GetString();
      auto fn = c.FindMember("function");
      if (fn != c.MemberEnd() && fn->value.IsObject()) {
        if (fn->value.HasMember("name") && fn->value["name"].IsString()) call.name = fn->value["name"].GetString();
        if (fn->value.HasMember("arguments") && fn->value["arguments"].IsString()) {
          call.arguments_json = fn->value["arguments"].GetString();
        }
      }
      calls.push_back(std::move(call));
    }
    return calls;
  }

  // Appends the turns earlier attempts checkpointed; returns the tool calls
  // of the last turn that have no result yet.
  std::vector<ToolCall> Replay() {
    std::vector<ToolCall> calls;
    std::map<std::string, std::string> results;
    auto close_turn = [&] {
      for (const ToolCall& call : calls) {
        auto it = results.find(call.id);
        if (it != results.end()) AppendToolResult(call.id, it->second);
      }
    };
    for (const JsonText& step : ctx_.journal) {
      JsonDocument doc;
      if (!step || doc.Parse(step->c_str(), step->size()).HasParseError() || !doc.IsObject()) continue;
      if (auto a = doc.FindMember("assistant"); a != doc.MemberEnd() && a->value.IsObject()) {
        close_turn();
        results.clear();
        calls = CallsOf(a->value);
        AppendMessage(Serialize(a->value));
        ++turns_;
      } else if (auto t = doc.FindMember("tool"); t != doc.MemberEnd() && t->value.IsObject()) {
        const Value& tool = t->value;
        if (tool.HasMember("tool_call_id") && tool["tool_call_id"].IsString() &&
            tool.HasMember("content") && tool["content"].IsString()) {
          results[tool["tool_call_id"].GetString()] = tool["content"].GetString();
        }
      }
    }
    close_turn();
    std::vector<ToolCall> pending;
    for (ToolCall& call : calls) {
      if (!results.count(call.id)) pending.push_back(std::move(call));
    }
    return pending;
  }

  // --- Model calls (hedged) ---

  Status Stopped() const {
    if (ctx_.cancel != nullptr && ctx_.cancel->cancelled()) {
      return Status::Error(ErrorKind::kCancelled, "cancelled");
    }
    if (ctx_.deadline > 0 && client_->clock()->Now() >= ctx_.deadline) {
      return Status::Error(ErrorKind::kTimeout, "timed out");
    }
    return Status::Ok();
  }

  void CallModel() {
    if (Status stop = Stopped(); !stop.ok()) return Finish(NodeResult::Failure(stop));
    if (turns_ >= spec_.max_turns) {
      return Finish(NodeResult::Failure(Status::Error(
          ErrorKind::kPermanent, "no final answer within max_turns = " +
                                     std::to_string(spec_.max_turns) + " model turns")));
    }
    request_ = spec_.request;
    request_.system = system_;
    request_.messages_json = Serialize(messages_);
    uint64_t call;
    {
      MutexLock lock(&mu_);
      call = ++call_;
      hedges_.clear();
      call_done_ = false;
    }
    Launch(call);
  }

  // Starts the next racing request of model call `call`, and arms the timer
  // for the one after it.
  void Launch(uint64_t call) {
    auto token = std::make_shared<CancelToken>();
    int k;
    {
      MutexLock lock(&mu_);
      if (call != call_ || call_done_ || finished_) return;
      k = static_cast<int>(hedges_.size());
      hedges_.push_back({token, true});
      ++using_ctx_;
    }
    if (ctx_.cancel != nullptr && ctx_.cancel->cancelled()) token->Cancel();
    if (k > 0) ctx_.record("hedge_started", EventData().Add("hedge", k).Done());
    if (k + 1 < spec_.hedge.max && spec_.hedge.delay > 0) {
      std::weak_ptr<AgentRun> weak = shared_from_this();
      client_->clock()->After(spec_.hedge.delay, [weak, call] {
        if (auto self = weak.lock()) self->OnHedgeTimer(call);
      });
    }
    auto self = shared_from_this();
    double deadline = ctx_.deadline;
    LeaveCtx();
    client_->Call(spec_.provider, request_, token.get(), deadline,
                  [self, call, k, token](Result<ChatResponse> result, LlmCallRecord record) {
                    self->OnCall(call, k, std::move(result), std::move(record));
                  });
  }

  void OnHedgeTimer(uint64_t call) {
    {
      MutexLock lock(&mu_);
      if (call != call_ || call_done_ || finished_) return;
    }
    // Off the timer thread: Launch may do real work (a mock reply, a gate).
    Post([self = shared_from_this(), call] { self->Launch(call); });
  }

  void OnCall(uint64_t call, int k, Result<ChatResponse> result, LlmCallRecord record) {
    std::vector<std::pair<int, std::shared_ptr<CancelToken>>> losers;
    bool fail = false;
    {
      MutexLock lock(&mu_);
      if (call != call_ || call_done_ || finished_) return;  // a loser, already aborted
      hedges_[k].running = false;
      if (result.ok()) {
        call_done_ = true;
        for (size_t j = 0; j < hedges_.size(); ++j) {
          if (hedges_[j].running) losers.emplace_back(static_cast<int>(j), hedges_[j].token);
        }
      } else {
        bool any_running = false;
        for (const Hedge& h : hedges_) any_running = any_running || h.running;
        fail = call_done_ = !any_running;
        if (!fail) ++using_ctx_;
      }
    }
    if (!result.ok() && !fail) {
      // Another request of the race is still out: the call goes on.
      ReportLlmCall(ctx_, record, k);
      return LeaveCtx();
    }
    ReportLlmCall(ctx_, record, k);
    for (auto& [j, token] : losers) {
      ctx_.record("hedge_aborted", EventData().Add("hedge", j).Add("winner", k).Done());
      token->Cancel();
    }
    if (fail) return Finish(NodeResult::Failure(result.status()));
    Post([self = shared_from_this(), response = std::move(result).value()]() mutable {
      self->OnResponse(std::move(response));
    });
  }

  void AbortHedges() {
    std::vector<std::shared_ptr<CancelToken>> tokens;
    {
      MutexLock lock(&mu_);
      for (const Hedge& h : hedges_) tokens.push_back(h.token);
    }
    for (auto& token : tokens) token->Cancel();
  }

  void OnResponse(ChatResponse response) {
    if (!response.tool_calls.empty()) {
      if (spec_.request.tools.empty()) {
        return Finish(NodeResult::Failure(Status::Error(
            ErrorKind::kPermanent, "the model asked for tools but the agent declares none")));
      }
      AppendMessage(response.message_json);
      ctx_.checkpoint(MakeJson("{\"assistant\":" + response.message_json + "}"));
      ++turns_;
      return RunTools(std::move(response.tool_calls));
    }
    if (spec_.request.output == OutputMode::kText) {
      return Finish(NodeResult::Success(MakeJson(JsonString(response.text))));
    }
    auto json = CheckJsonOutput(response.text, spec_.request.output == OutputMode::kSchema
                                                   ? spec_.request.schema_json
                                                   : std::string());
    if (!json.ok()) return Finish(NodeResult::Failure(json.status()));
    Finish(NodeResult::Success(MakeJson(std::move(json).value())));
  }

  // --- Tools ---

  void RunTools(std::vector<ToolCall> calls) {
    {
      MutexLock lock(&mu_);
      tool_calls_ = std::move(calls);
      tool_results_.assign(tool_calls_.size(), std::string());
      tools_left_ = static_cast<int>(tool_calls_.size());
      tool_failure_ = Status::Ok();
    }
    for (size_t i = 0; i < tool_calls_.size(); ++i) {
      Post([self = shared_from_this(), i] { self->RunTool(i); });
    }
  }

  void RunTool(size_t i) {
    const ToolCall& call = tool_calls_[i];
    double started = client_->clock()->Now();
    JsonDocument args;
    Status parsed = ParseUntrustedJson(call.arguments_json, &args);
    if (!parsed.ok() || !args.IsObject()) {
      std::string why = parsed.ok() ? Excerpt(call.arguments_json) : parsed.message();
      return ToolDone(i, started,
                      NodeResult::Failure(Status::Error(
                          ErrorKind::kError, "the arguments are not a JSON object: " + why)));
    }
    if (tools_ == nullptr) {
      return ToolDone(i, started, NodeResult::Failure(Status::Error(
                                      ErrorKind::kError, "unknown tool '" + call.name + "'")));
    }
    auto self = shared_from_this();
    tools_->Run(ctx_, call.name, MakeJson(Serialize(args)),
                [self, i, started](NodeResult result) { self->ToolDone(i, started, std::move(result)); });
  }

  void ToolDone(size_t i, double started, NodeResult result) {
    const ToolCall& call = tool_calls_[i];
    bool ok = result.status == NodeStatus::kSucceeded;
    // The model reads the error's message, not the Lua traceback under it.
    std::string message = result.error.message();
    message = message.substr(0, message.find("\nstack traceback:"));
    std::string content = ok ? ToolContent(result.output) : "error: " + message;
    EventData data;
    data.Add("tool", call.name).Add("id", call.id).Add("seconds", client_->clock()->Now() - started);
    data.Add("ok", ok);
    if (!ok) data.Add("kind", ErrorKindName(result.error.kind())).Add("message", result.error.message());
    ctx_.record("tool_call", data.Done());
    bool stops = !ok && (result.error.kind() == ErrorKind::kCancelled ||
                         result.error.kind() == ErrorKind::kTimeout);
    if (!stops) {
      ctx_.checkpoint(MakeJson(EventData()
                                   .Add("tool_call_id", call.id)
                                   .Add("name", call.name)
                                   .Add("content", content)
                                   .Done()
                                   .insert(0, "{\"tool\":")
                                   .append("}")));
    }
    Status failure;
    std::vector<std::string> results;
    {
      MutexLock lock(&mu_);
      tool_results_[i] = std::move(content);
      if (stops && tool_failure_.ok()) tool_failure_ = result.error;
      if (--tools_left_ > 0) return;
      failure = tool_failure_;
      results = std::move(tool_results_);
    }
    if (!failure.ok()) return Finish(NodeResult::Failure(failure));
    for (size_t j = 0; j < tool_calls_.size(); ++j) AppendToolResult(tool_calls_[j].id, results[j]);
    Post([self = shared_from_this()] { self->CallModel(); });
  }

  // --- Plumbing ---

  void Post(std::function<void()> fn) {
    if (ctx_.post) {
      ctx_.post(std::move(fn));
    } else {
      fn();
    }
  }

  // Ends the attempt, or, while another thread still reads ctx_ (a racing
  // request's report), leaves that to its LeaveCtx.
  void Finish(NodeResult result) {
    {
      MutexLock lock(&mu_);
      if (finished_ || pending_finish_) return;
      if (using_ctx_ > 0) {
        pending_finish_ = std::move(result);
        return;
      }
      finished_ = true;
    }
    Complete(std::move(result));
  }

  void LeaveCtx() {
    std::optional<NodeResult> result;
    {
      MutexLock lock(&mu_);
      if (--using_ctx_ > 0 || !pending_finish_ || finished_) return;
      result = std::move(pending_finish_);
      finished_ = true;
    }
    Complete(std::move(*result));
  }

  void Complete(NodeResult result) {
    if (ctx_.cancel != nullptr && subscription_ != 0) ctx_.cancel->Unsubscribe(subscription_);
    AbortHedges();
    NodeCompletion done = std::move(done_);
    done(std::move(result));
  }

  struct Hedge {
    std::shared_ptr<CancelToken> token;
    bool running = false;
  };

  const std::shared_ptr<LlmClient> client_;
  const AgentSpec& spec_;  // the AgentNode outlives its attempts
  const std::shared_ptr<ToolRunner> tools_;
  const NodeContext& ctx_;  // the executor keeps it alive until done_ is called
  NodeCompletion done_;
  uint64_t subscription_ = 0;

  // Driven by one step at a time (Begin, CallModel, OnResponse, tool completion).
  JsonDocument messages_;
  std::string system_;
  ChatRequest request_;
  int turns_ = 0;
  std::vector<ToolCall> tool_calls_;

  Mutex mu_;
  uint64_t call_ GUARDED_BY(mu_) = 0;       // the model call in progress
  bool call_done_ GUARDED_BY(mu_) = false;  // it has a winner or has failed
  std::vector<Hedge> hedges_ GUARDED_BY(mu_);
  std::vector<std::string> tool_results_ GUARDED_BY(mu_);
  int tools_left_ GUARDED_BY(mu_) = 0;
  Status tool_failure_ GUARDED_BY(mu_);
  int using_ctx_ GUARDED_BY(mu_) = 0;  // threads other than the driving step reading ctx_
  std::optional<NodeResult> pending_finish_ GUARDED_BY(mu_);
  bool finished_ GUARDED_BY(mu_) = false;
};

}  // namespace

bool ReportLlmCall(const NodeContext& ctx, const LlmCallRecord& record, int hedge) {
  EventData data;
  data.Add("provider", record.provider).Add("model", record.model);
  data.Add("prompt_tokens", record.usage.prompt_tokens)
      .Add("completion_tokens", record.usage.completion_tokens)
      .Add("cost", record.cost)
      .Add("seconds", record.seconds)
      .Add("queued", record.queued)
      .Add("http_status", record.http_status)
      .Add("hedge", hedge)
      .Add("outcome", record.outcome.ok() ? "ok" : ErrorKindName(record.outcome.kind()));
  if (!record.finish_reason.empty()) data.Add("finish_reason", record.finish_reason);
  if (!record.request_model.empty()) data.Add("request_model", record.request_model);
  if (!record.provider_kind.empty()) data.Add("provider_kind", record.provider_kind);
  if (!record.server.empty()) data.Add("server", record.server);
  if (!record.outcome.ok()) data.Add("message", record.outcome.message());
  if (!record.request_json.empty()) data.AddRaw("request", record.request_json);
  if (!record.reply_json.empty()) data.AddRaw("reply", record.reply_json);
  if (!record.rate_limit_warning.empty() && ctx.record) {
    ctx.record("rate_limit_local", EventData()
                                       .Add("provider", record.provider)
                                       .Add("message", record.rate_limit_warning)
                                       .Done());
  }
  if (!ctx.spend) return true;
  Usage usage = record.usage;
  usage.cost = record.cost;
  return ctx.spend(usage, data.Done());
}

void AgentNode::Start(const NodeContext& ctx, NodeCompletion done) {
  auto run = std::make_shared<AgentRun>(client_, spec_, tools_, ctx, std::move(done));
  run->Begin();
}

}  // namespace keel
