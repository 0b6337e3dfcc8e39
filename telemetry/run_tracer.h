#pragma once
// RunTracer: turns what a run reports to its Observer (engine/observer.h) —
// its start and end, each node attempt, the events it records — into
// OpenTelemetry spans named by the GenAI conventions:
//
//   invoke_workflow WORKFLOW          the run (one per process that runs it)
//     invoke_agent NODE | execute_tool NODE   one per node attempt
//       chat MODEL                    one per LLM call ("llm_call" events)
//
// Policy decisions (retry_scheduled, attempt timeouts, circuit_rejected,
// breaker transitions, fallback_started/finished, hedges, ...) become span
// events of the attempt they concern. The trace id is derived from the run
// id, so a resume of the run (another process, later) continues its trace:
// the first process's run span has an id derived from the run id too, and a
// resume's run span is its child. Finished spans go to `sink` at once (a
// SpanExporter's Add, which only queues them).
//
// Thread-safety: the Observer callbacks may come from any thread at once;
// one lock guards the spans under way. `sink` is called with that lock
// released.

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include "engine/mutex.h"
#include "engine/observer.h"
#include "telemetry/span.h"

namespace keel::telemetry {

using SpanSink = std::function<void(Span)>;

// The 32-hex-digit trace id of run `run_id`, and the 16-hex-digit id of the
// run span of its first process: the same in every process.
std::string TraceIdOfRun(std::string_view run_id);
std::string RootSpanIdOfRun(std::string_view run_id);

class RunTracer : public Observer {
 public:
  // `workflow` (which must outlive the tracer) says which nodes are agents;
  // `resuming` makes the run span a child of the first process's.
  RunTracer(const WorkflowSpec& workflow, bool resuming, SpanSink sink);

  void OnRunStarted(const RunInfo& info) override;
  void OnNodeStarted(std::string_view node, int attempt) override;
  void OnNodeFinished(std::string_view node, const NodeResult& result, double seconds) override;
  void OnRunFinished(RunStatus status) override;
  void OnEvent(std::string_view node, std::string_view kind, std::string_view data_json,
               double ts) override;

 private:
  // A node's attempt span: open (under way) or closed (failed, waiting for
  // the policy's next decision before it is sent).
  struct NodeSpans {
    Span span;
    bool has_span = false;
    bool open = false;
    std::vector<SpanEvent> early;  // events before its first attempt (circuit_rejected)
  };

  std::string NewSpanId() EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Span AttemptSpan(std::string_view node, int attempt, int64_t start_ns)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds `event` to the node's current span, or keeps it for the next.
  void AddEvent(NodeSpans& spans, SpanEvent event);
  Span ChatSpan(const std::string& parent, std::string_view data_json, double ts)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const WorkflowSpec& workflow_;
  const bool resuming_;
  const SpanSink sink_;

  Mutex mu_;
  std::mt19937_64 rng_ GUARDED_BY(mu_);
  Span run_ GUARDED_BY(mu_);
  bool run_started_ GUARDED_BY(mu_) = false;
  std::string run_id_ GUARDED_BY(mu_);
  std::unordered_map<std::string, NodeSpans> nodes_ GUARDED_BY(mu_);
};

}  // namespace keel::telemetry
