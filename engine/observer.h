#pragma once
// Observer: hears what happens in a run, for progress displays and logs.
//
// Callbacks come from TBB workers, the I/O thread and the timer thread,
// concurrently; implementations synchronize themselves and must not block
// for long. The default implementations do nothing.

#include <string>
#include <string_view>

#include "engine/node_status.h"
#include "engine/workflow.h"

namespace keel {

struct RunInfo {
  std::string run_id;
  std::string workflow;
  int node_count = 0;
  int restored = 0;  // nodes kept from an earlier attempt of the run (resume)
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void OnRunStarted(const RunInfo& info) {}
  virtual void OnNodeStarted(std::string_view node, int attempt) {}
  // `seconds` is the wall time the node took (0 for nodes that never ran).
  virtual void OnNodeFinished(std::string_view node, const NodeResult& result, double seconds) {}
  virtual void OnRunFinished(RunStatus status) {}
  // An event the run records (engine/store.h EventRecord): `node` ("" for
  // none), `kind` ("retry_scheduled", "node_failed", "llm_call", ...),
  // `data_json` (a JSON object), `ts` (wall seconds). Every event the
  // executor records comes here, nodes' finish events and budget_exceeded
  // included; the run's own start and finish are OnRunStarted and
  // OnRunFinished. Events of a fallback workflow's nodes come wrapped in a
  // "fallback_event" of the node it runs for. Called where the engine
  // records the event, sometimes under a node's lock: never call back into
  // the run.
  virtual void OnEvent(std::string_view node, std::string_view kind, std::string_view data_json,
                       double ts) {}
};

}  // namespace keel
