#include "telemetry/span_exporter.h"

#include <chrono>
#include <utility>

#include "engine/clock.h"
#include "nodes/curl_library.h"
#include "nodes/http_loop.h"
#include "telemetry/otlp_json.h"

namespace keel::telemetry {

SpanExporter::SpanExporter(OtelConfig config, std::string version, ExporterOptions options)
    : config_(std::move(config)),
      version_(std::move(version)),
      options_(options),
      http_(std::make_shared<HttpLoop>(SystemClock())) {
  thread_ = std::thread([this] { Loop(); });
}

SpanExporter::~SpanExporter() { Shutdown(0); }

void SpanExporter::Add(Span span) {
  MutexLock lock(&mu_);
  if (stopping_ || queue_.size() >= options_.max_queue) {
    ++counts_.dropped;
    return;
  }
  queue_.push_back(std::move(span));
  if (queue_.size() == options_.batch_size) wake_.Signal();
}

ExporterCounts SpanExporter::counts() const {
  MutexLock lock(&mu_);
  return counts_;
}

void SpanExporter::Loop() {
  // libcurl (and its thirty libraries) loads here while the run starts, not
  // when the first batch is due at the end of a short run.
  (void)LoadCurl(nullptr);
  auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(options_.interval));
  auto next = std::chrono::steady_clock::now() + interval;
  for (;;) {
    std::vector<Span> batch;
    {
      MutexLock lock(&mu_);
      while (!abandon_ && !stopping_ && queue_.size() < options_.batch_size &&
             std::chrono::steady_clock::now() < next) {
        wake_.WaitUntil(&mu_, next);
      }
      if (abandon_ || (stopping_ && queue_.empty())) break;
      size_t n = std::min(queue_.size(), options_.batch_size);
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      in_flight_ = !batch.empty();
    }
    next = std::chrono::steady_clock::now() + interval;
    if (!batch.empty()) Export(std::move(batch));
    MutexLock lock(&mu_);
    in_flight_ = false;
    if (queue_.empty()) idle_.SignalAll();
  }
  MutexLock lock(&mu_);
  counts_.dropped += static_cast<int64_t>(queue_.size());
  queue_.clear();
  in_flight_ = false;
  idle_.SignalAll();
}

void SpanExporter::Export(std::vector<Span> batch) {
  HttpRequest request;
  request.method = "POST";
  request.url = config_.traces_url;
  request.headers = config_.headers;
  request.headers.emplace_back("Content-Type", "application/json");
  request.body = OtlpTracesJson(batch, config_.service_name, version_);
  request.deadline = SystemClock()->Now() + config_.timeout;
  request.connect_timeout = config_.timeout;
  request.cancel = &abort_;
  request.max_body_bytes = 1 << 20;

  struct Outcome {
    Mutex mu;
    CondVar done_cv;
    bool done GUARDED_BY(mu) = false;
    std::string error GUARDED_BY(mu);
  };
  auto outcome = std::make_shared<Outcome>();
  http_->Send(std::move(request), [outcome](HttpResponse response) {
    std::string error;
    if (!response.transport.ok()) {
      error = response.transport.message();
    } else if (response.status < 200 || response.status > 299) {
      error = "the collector answered HTTP " + std::to_string(response.status);
    }
    MutexLock lock(&outcome->mu);
    outcome->error = std::move(error);
    outcome->done = true;
    outcome->done_cv.SignalAll();
  });
  std::string error;
  {
    MutexLock lock(&outcome->mu);
    while (!outcome->done) outcome->done_cv.Wait(&outcome->mu);
    error = outcome->error;
  }
  MutexLock lock(&mu_);
  if (error.empty()) {
    counts_.exported += static_cast<int64_t>(batch.size());
  } else {
    counts_.dropped += static_cast<int64_t>(batch.size());
    ++counts_.failed_batches;
    counts_.last_error = std::move(error);
  }
}

void SpanExporter::Shutdown(double max_seconds) {
  {
    MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    stopping_ = true;
    wake_.SignalAll();
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(max_seconds > 0 ? max_seconds : 0));
    while ((!queue_.empty() || in_flight_) && std::chrono::steady_clock::now() < deadline) {
      idle_.WaitUntil(&mu_, deadline);
    }
    abandon_ = true;
    wake_.SignalAll();
  }
  abort_.Cancel();  // the request in flight, if any, ends now
  if (thread_.joinable()) thread_.join();
  http_.reset();
}

}  // namespace keel::telemetry
