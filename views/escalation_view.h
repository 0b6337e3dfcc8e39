#pragma once
// EscalationView: the escalations a run's failures started (a workflow's
// `on_failure`, engine/escalation.h), read back from its
// escalation_started / escalation_finished events, for `keel show` and
// GET /api/v1/runs/ID. Free functions over values the caller owns; any
// thread.

#include <string>
#include <vector>

#include "engine/store.h"
#include "views/json_out.h"

namespace keel {

struct EscalationSummary {
  int number = 0;        // 1 for the run's first escalation
  std::string workflow;  // the on_failure workflow
  // How it ended ("succeeded", "failed", ...); "running" while no
  // escalation_finished event says (it runs, or its process died).
  std::string status = "running";
  std::string error;  // its first failure; "" when none
};

// The escalations of `events` (a run's, in order), oldest first.
std::vector<EscalationSummary> ReadEscalations(const std::vector<EventRecord>& events);

// `escalations` as a JSON array of {number, workflow, status, error}.
void WriteEscalationsJson(JsonOut* out, const std::vector<EscalationSummary>& escalations);

}  // namespace keel
