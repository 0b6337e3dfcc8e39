#include "cli/run_tracing.h"

#include <cstdio>
#include <string>
#include <utility>

#include "telemetry/otel_config.h"

namespace keel::cli {
namespace {

// Progress that also tells a RunTracer everything it hears.
class TracedProgress : public Progress {
 public:
  TracedProgress(std::unique_ptr<Progress> inner, Observer* tracer)
      : inner_(std::move(inner)), tracer_(tracer) {}

  void OnRunStarted(const RunInfo& info) override {
    tracer_->OnRunStarted(info);
    inner_->OnRunStarted(info);
  }
  void OnNodeStarted(std::string_view node, int attempt) override {
    tracer_->OnNodeStarted(node, attempt);
    inner_->OnNodeStarted(node, attempt);
  }
  void OnNodeFinished(std::string_view node, const NodeResult& result, double seconds) override {
    tracer_->OnNodeFinished(node, result, seconds);
    inner_->OnNodeFinished(node, result, seconds);
  }
  void OnRunFinished(RunStatus status) override {
    inner_->OnRunFinished(status);
    tracer_->OnRunFinished(status);
  }
  void OnEvent(std::string_view node, std::string_view kind, std::string_view data_json,
               double ts) override {
    tracer_->OnEvent(node, kind, data_json, ts);
    inner_->OnEvent(node, kind, data_json, ts);
  }
  void Close() override { inner_->Close(); }
  void OnMapItems(std::string_view map, const std::string& counts, bool final) override {
    inner_->OnMapItems(map, counts, final);
  }

 private:
  std::unique_ptr<Progress> inner_;
  Observer* tracer_;
};

}  // namespace

RunTracing::RunTracing(const WorkflowSpec& workflow, bool resuming) {
  std::string warning;
  auto config = telemetry::OtelConfigFromEnv(&warning);
  if (!warning.empty()) std::fprintf(stderr, "keel: warning: %s\n", warning.c_str());
  if (!config) return;
  exporter_ = std::make_unique<telemetry::SpanExporter>(std::move(*config), KEEL_VERSION);
  tracer_ = std::make_unique<telemetry::RunTracer>(
      workflow, resuming, [exporter = exporter_.get()](telemetry::Span span) {
        exporter->Add(std::move(span));
      });
}

RunTracing::~RunTracing() {
  if (!exporter_) return;
  exporter_->Shutdown(kTraceFlushSeconds);
  telemetry::ExporterCounts counts = exporter_->counts();
  if (counts.dropped > 0) {
    std::string why = counts.last_error.empty() ? "" : " (" + counts.last_error + ")";
    std::fprintf(stderr, "keel: warning: traces: %lld spans not exported%s\n",
                 static_cast<long long>(counts.dropped), why.c_str());
  }
}

std::unique_ptr<Progress> RunTracing::Wrap(std::unique_ptr<Progress> progress) {
  if (!tracer_) return progress;
  return std::make_unique<TracedProgress>(std::move(progress), tracer_.get());
}

}  // namespace keel::cli
