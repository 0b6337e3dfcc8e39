#pragma once
// NodePolicy: the policy stack one node runs behind (DESIGN.md section 4):
// fallback( total-timeout( retry( breaker( attempt-timeout( body ))))),
// plus its join rule and bulkhead. A value type, immutable once the workflow
// is built; read from any thread.

#include <string>
#include <vector>

#include "engine/circuit_breaker.h"
#include "engine/retry_policy.h"
#include "engine/status.h"

namespace keel {

struct JoinPolicy {
  enum class Kind { kAll, kAny, kQuorum, kBestEffort };
  Kind kind = Kind::kAll;
  int quorum = 0;             // kQuorum: successes needed
  double best_effort = 0;     // kBestEffort: seconds to wait for the rest
};

// One entry of a node's `fallback` list: the workflow to run, and the error
// kinds it is for (empty: any).
struct FallbackRule {
  std::string workflow;
  std::vector<ErrorKind> on;

  bool Matches(ErrorKind kind) const;
};

struct NodePolicy {
  double timeout = 0;        // seconds per attempt; 0: none
  double total_timeout = 0;  // seconds for all attempts and backoff; 0: none
  RetryPolicy retry;
  bool has_circuit = false;
  BreakerConfig circuit;              // key defaults to the node name
  std::vector<FallbackRule> fallback;  // tried in order; entries whose `on` misses are skipped
  JoinPolicy join;
  int max_concurrency = 0;   // attempts at once per bulkhead_key; 0: unlimited
  std::string bulkhead_key;  // max_concurrency's key: given, else the circuit key
  size_t memory = 0;        // bytes per Lua state; 0: the loader's default
};

// Builds a node's policy from the JSON object of options it declared and the
// workflow's `defaults` object (node options win). `node` names the node for
// the circuit key default. Errors (kPermanent) name the option, e.g.
// "retry.jitter: expected one of none, full, equal, decorrelated".
Result<NodePolicy> ParseNodePolicy(const std::string& node, const std::string& options_json,
                                   const std::string& defaults_json);

// The same in two steps, so a workflow's defaults are parsed once for all its
// nodes: the policy the `defaults` object gives, then one node's on top.
Result<NodePolicy> ParseDefaultPolicy(const std::string& defaults_json);
Result<NodePolicy> ParseNodePolicy(const std::string& node, const std::string& options_json,
                                   const NodePolicy& defaults);

// The run-wide retry budget from `defaults.retry_budget` (retries allowed
// across the whole run); -1 when unlimited.
Result<int> ParseRetryBudget(const std::string& defaults_json);

}  // namespace keel
