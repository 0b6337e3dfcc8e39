#include "scripts/log_sink.h"

#include <cstdio>

#include "engine/mutex.h"

namespace keel {
namespace {

Mutex& SinkMutex() {
  static Mutex mu;
  return mu;
}

LogSink& Sink() {
  static LogSink sink;
  return sink;
}

}  // namespace

void SetLogSink(LogSink sink) {
  MutexLock lock(&SinkMutex());
  Sink() = std::move(sink);
}

void WriteLogLines(std::string_view text) {
  MutexLock lock(&SinkMutex());
  if (Sink()) {
    Sink()(text);
    return;
  }
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace keel
