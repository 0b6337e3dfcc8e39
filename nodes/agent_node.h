#pragma once
// AgentNode: the NodeBody of a `keel.agent` node — one LLM conversation per
// attempt, with the tool-calling loop.
//
// An attempt renders the prompt templates from ctx.params and ctx.deps,
// replays what earlier attempts checkpointed (ctx.journal: each model turn
// that asked for tools, each tool result), and then alternates: ask the
// model (hedged: after `hedge.delay` a second request races the first, up
// to `hedge.max`; the first success wins and the others are aborted); if it
// asks for tools, checkpoint its turn, run the tools (in parallel, through
// the ToolRunner) and checkpoint each result; else its answer is the output
// — a string for output "text", the parsed JSON value for "json" or a
// schema. At most `max_turns` model turns. A resumed or retried agent thus
// never pays again for a finished turn.
//
// Every model call is reported through ctx.spend as an llm_call event
// (provider, model, tokens, cost, latency, outcome, hedge index, finish
// reason, and the request and reply as nodes/llm_call_recording.h records
// them); tool calls as tool_call events. A tool that fails with an error
// is reported to the model as the tool's result ("error: ..."), so it can
// recover; a tool that times out or is cancelled ends the attempt.
//
// Thread-safety: Start may be called from several threads at once; one
// attempt's steps run one at a time, on workers (through ctx.post), except
// the completions of racing hedges and parallel tools, which a mutex per
// attempt serializes.

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/workflow.h"
#include "nodes/chat.h"
#include "nodes/llm_client.h"
#include "nodes/prompt_template.h"

namespace keel {

// Runs an agent's tools, which are Lua functions (scripts/ implements it).
class ToolRunner {
 public:
  virtual ~ToolRunner() = default;
  // Runs tool `name` with `arguments` (a JSON object) within the attempt
  // `ctx` (its cancel token and deadline apply). Calls `done` once, from any
  // thread, with the tool's output (kSucceeded) or its failure. Must not block.
  virtual void Run(const NodeContext& ctx, const std::string& name, JsonText arguments,
                   NodeCompletion done) = 0;
};

struct HedgeSpec {
  double delay = 0;  // seconds before the next request; 0: no hedging
  int max = 1;       // requests in flight at most
};

struct AgentSpec {
  std::string provider;
  ChatRequest request;  // model, temperature, max_tokens, output, schema, tools
  PromptTemplate system;
  PromptTemplate prompt;  // may be empty when `messages` are given
  std::vector<std::pair<std::string, PromptTemplate>> messages;  // role, content
  int max_turns = 10;
  HedgeSpec hedge;
};

class AgentNode final : public NodeBody {
 public:
  // `tools` may be null when the spec declares none.
  AgentNode(std::shared_ptr<LlmClient> client, AgentSpec spec, std::shared_ptr<ToolRunner> tools)
      : client_(std::move(client)), spec_(std::move(spec)), tools_(std::move(tools)) {}

  void Start(const NodeContext& ctx, NodeCompletion done) override;
  // Model calls get ctx.deadline; tools are Lua functions, which honour it.
  bool EnforcesDeadline() const override { return true; }

 private:
  const std::shared_ptr<LlmClient> client_;
  const AgentSpec spec_;
  const std::shared_ptr<ToolRunner> tools_;
};

// Reports one model call of the attempt `ctx` through ctx.spend (an
// llm_call event). `hedge` numbers racing requests from 0. Returns what
// ctx.spend returned (false: the run's budget is exceeded).
bool ReportLlmCall(const NodeContext& ctx, const LlmCallRecord& record, int hedge);

}  // namespace keel
