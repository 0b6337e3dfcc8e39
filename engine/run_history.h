#pragma once
// Reads what an earlier attempt of a run left in its events: each node's
// checkpoints (NodeContext::checkpoint) and the run's LLM spending. Used by
// Runner::Resume and by the CLI's `show`. Pure functions.

#include <optional>
#include <vector>

#include "engine/executor.h"
#include "engine/store.h"
#include "engine/usage.h"

namespace keel {

// The usage an event carries: a kUsageEventKind event, or a fallback
// workflow's one wrapped in a "fallback_event". nullopt for other events.
std::optional<Usage> UsageOf(const EventRecord& event);

// Checkpoints by node (the run's own nodes by name, a fallback workflow's by
// FallbackJournalKey), the usage summed over `events`, the wait nodes' due
// times and the number of escalations started.
RunHistory ReadRunHistory(const std::vector<EventRecord>& events);

}  // namespace keel
