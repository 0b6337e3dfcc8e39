#pragma once
// SpanExporter: sends finished spans to an OpenTelemetry collector over
// OTLP/HTTP (JSON), off the run's threads.
//
// Add() only appends to a bounded queue under a lock (never blocks on the
// network): when the queue is full the span is dropped and counted. One
// exporter thread takes batches from the queue (when `batch_size` spans wait
// or `interval` seconds have passed since the last export) and POSTs each
// through an HttpLoop with a deadline of the config's timeout; a batch that
// fails (refused, timed out, a non-2xx reply) is dropped and counted, not
// retried, so a collector that is down, slow or black-holed costs the run
// nothing but the spans. Shutdown() exports what is queued for at most the
// time it is given, then abandons the rest and aborts the transfer in
// flight.
//
// Thread-safety: Add() and the counters from any thread; Shutdown() (and the
// destructor) from one thread, once.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/cancel_token.h"
#include "engine/mutex.h"
#include "telemetry/otel_config.h"
#include "telemetry/span.h"

namespace keel {
class HttpLoop;
}

namespace keel::telemetry {

struct ExporterOptions {
  size_t max_queue = 4096;  // spans waiting; more are dropped
  size_t batch_size = 512;  // spans per request, and the count that triggers one
  double interval = 1;      // seconds between exports of a partial batch
};

struct ExporterCounts {
  int64_t exported = 0;  // spans a collector accepted (2xx)
  int64_t dropped = 0;   // spans lost: queue full, export failed, or abandoned at shutdown
  int64_t failed_batches = 0;
  std::string last_error;  // why the last failed batch failed; "" if none did
};

class SpanExporter {
 public:
  // Starts the exporter thread. `version` is the service.version attribute.
  SpanExporter(OtelConfig config, std::string version, ExporterOptions options = {});
  ~SpanExporter();  // Shutdown(0) unless it was called
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  // Queues `span` for export, or drops it (counted) when the queue is full
  // or the exporter is shut down.
  void Add(Span span);

  // Exports what is queued, waiting at most `max_seconds`; then abandons
  // what is left (counted as dropped), aborts the request in flight and
  // joins the thread. Later calls do nothing.
  void Shutdown(double max_seconds);

  ExporterCounts counts() const;

 private:
  void Loop();
  // POSTs one batch and waits for the outcome (bounded by the timeout or
  // the abort at shutdown).
  void Export(std::vector<Span> batch);

  const OtelConfig config_;
  const std::string version_;
  const ExporterOptions options_;
  std::shared_ptr<HttpLoop> http_;
  CancelToken abort_;  // cancelled when Shutdown gives up

  mutable Mutex mu_;
  CondVar wake_;  // the exporter thread: spans, a flush or the end
  CondVar idle_;  // Shutdown: the queue is empty and nothing is in flight
  std::deque<Span> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;   // flush what is queued, then end
  bool abandon_ GUARDED_BY(mu_) = false;    // end now
  bool in_flight_ GUARDED_BY(mu_) = false;  // a batch is being exported
  bool shut_down_ GUARDED_BY(mu_) = false;
  ExporterCounts counts_ GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace keel::telemetry
