#include "scripts/log_sink.h"

#include <cstdio>

#include "engine/mutex.h"
#include "engine/thread_annotations.h"

namespace keel {
namespace {

// The process's sink and its lock.
struct SinkSlot {
  Mutex mu;
  LogSink sink GUARDED_BY(mu);
};

SinkSlot& Slot() {
  static SinkSlot slot;
  return slot;
}

}  // namespace

void SetLogSink(LogSink sink) {
  SinkSlot& slot = Slot();
  MutexLock lock(&slot.mu);
  slot.sink = std::move(sink);
}

void WriteLogLines(std::string_view text) {
  SinkSlot& slot = Slot();
  MutexLock lock(&slot.mu);
  if (slot.sink) {
    slot.sink(text);
    return;
  }
  std::fwrite(text.data(), 1, text.size(), stderr);
}

}  // namespace keel
