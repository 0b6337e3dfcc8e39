#pragma once
// RunTracing: the OpenTelemetry traces of the run a command executes (`keel
// run`, `resume`, `fork`), when the environment asks for them
// (telemetry/otel_config.h). It makes the process's SpanExporter and a
// RunTracer and hands the tracer the run's progress events alongside the
// display; with no endpoint configured it does nothing and costs nothing.
// Destroying it gives the exporter at most kTraceFlushSeconds to send what
// is queued, then reports on stderr any spans the collector did not take.
//
// Thread-safety: make, Wrap and destroy on the command's thread; the
// wrapped progress takes callbacks from any thread, as every Progress does.

#include <memory>

#include "cli/progress.h"
#include "telemetry/run_tracer.h"
#include "telemetry/span_exporter.h"

namespace keel::cli {

// The longest a command waits at exit for spans to reach the collector.
inline constexpr double kTraceFlushSeconds = 0.3;

class RunTracing {
 public:
  RunTracing(const WorkflowSpec& workflow, bool resuming);
  ~RunTracing();
  RunTracing(const RunTracing&) = delete;
  RunTracing& operator=(const RunTracing&) = delete;

  // `progress` also feeding the tracer, or `progress` itself when traces
  // are off. The result must not outlive this.
  std::unique_ptr<Progress> Wrap(std::unique_ptr<Progress> progress);

 private:
  std::unique_ptr<telemetry::SpanExporter> exporter_;
  std::unique_ptr<telemetry::RunTracer> tracer_;
};

}  // namespace keel::cli
