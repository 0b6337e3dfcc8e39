#pragma once
// A node's attempt ledger and its "why", built from the node's recorded
// events for `keel show RUN --node NAME` and GET /api/v1/runs/ID/nodes/NAME:
// each attempt with its times and outcome, which policy decided its fate
// (retry, breaker, timeout, fallback, hedge, budget) and what came next in
// plain words ("retried after 2s", "breaker llm:fast open: rejected",
// "fallback workflow cheap ran: succeeded", "retry budget exhausted"); and,
// for a node that is not running or not finished, why ("waiting on extract,
// clean", "backing off until 12:03:09 UTC (attempt 2 failed: timeout)").
// Free functions over values the caller owns; any thread.

#include <optional>
#include <string>
#include <vector>

#include "engine/store.h"

namespace keel {

struct AttemptEntry {
  int attempt = 1;
  double started_at = 0;   // wall seconds; 0 when not recorded
  double finished_at = 0;  // 0 while running
  // "succeeded", "failed", "timeout", "cancelled", "rejected" or "running".
  std::string outcome = "running";
  std::string error_kind;  // ErrorKindName; "" when none
  std::string message;
  // "retry", "breaker", "timeout", "fallback", "hedge", "budget"; "" when no
  // policy acted on it.
  std::string decided_by;
  std::string next;  // what came next, in words; "" when nothing did
};

// The attempts recorded in `events` (one node's, in seq order), given its
// record when it has one (nullptr: none) and the time now.
std::vector<AttemptEntry> BuildLedger(const std::vector<EventRecord>& events,
                                      const NodeRecord* record, double now);

// What a node waits on or why it did not run, in words with UTC times; ""
// for a node that ran (running with nothing holding it, succeeded, failed).
// `status` is the status shown (NodeStatusLabel, "pending" when there is no
// record), `record` its record (nullptr: none), `events` its events in seq
// order, `unfinished_deps` the dependencies not finished yet (for a pending
// node; empty when unknown or none), `run_label` the run's status label.
std::string ExplainNode(const std::string& status, const NodeRecord* record,
                        const std::vector<EventRecord>& events,
                        const std::vector<std::string>& unfinished_deps,
                        const std::string& run_label, double now);

// "12:03:09 UTC".
std::string UtcClock(double wall);

}  // namespace keel
