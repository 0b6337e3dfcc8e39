#include "cli/pending_lines.h"

#include <cstdio>

namespace keel::cli {

void PendingLines::Flush() {
  MutexLock lock(&mu);
  scheduled = false;
  if (text.empty()) return;
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
  text.clear();
}

void PendingLines::Add(const std::shared_ptr<PendingLines>& self, Clock* clock,
                       std::string_view lines) {
  MutexLock lock(&self->mu);
  self->text += lines;
  if (self->scheduled) return;
  self->scheduled = true;
  clock->After(kFlushDelay, [self] { self->Flush(); });
}

}  // namespace keel::cli
