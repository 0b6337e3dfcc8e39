#include "views/live_state.h"

#include "engine/wait_node.h"
#include "views/event_fields.h"

namespace keel {
namespace {

// How telling a state is: the highest of a run's nodes wins.
int Rank(const std::string& state) {
  if (state == "breaker_open") return 6;
  if (state == "backing_off") return 5;
  if (state == "retrying") return 4;
  if (state == "waiting_signal") return 3;
  if (state == "waiting_timer") return 2;
  if (state == "running") return 1;
  return 0;
}

void Keep(LiveState* best, LiveState candidate) {
  if (Rank(candidate.state) > Rank(best->state)) *best = std::move(candidate);
}

// A LiveState built field by field (designated initializers that skip
// members warn under -Wextra with GCC 12).
LiveState Live(std::string state, std::string node = "", double until = 0,
               std::string waiting_for = "") {
  LiveState live;
  live.state = std::move(state);
  live.node = std::move(node);
  live.until = until;
  live.waiting_for = std::move(waiting_for);
  return live;
}

}  // namespace

const char* const kLiveStateNames =
    "queued, running, retrying, backing_off, breaker_open, waiting_signal, waiting_timer or "
    "interrupted";

bool IsLiveStateName(const std::string& name) {
  return name == "queued" || name == "interrupted" || Rank(name) > 0;
}

LiveState NodeLiveState(const std::vector<EventRecord>& events, double now) {
  LiveState live = Live("running");
  // The newest event that says where the node's attempts stand.
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    const EventRecord& e = *it;
    live.node = e.node;
    if (e.kind == "retry_scheduled") {
      double due = e.ts + NumberField(e.data_json, "delay").value_or(0);
      if (StringField(e.data_json, "after") == "circuit_open") {
        live.state = "breaker_open";
        live.until = due;
      } else if (due > now) {
        live.state = "backing_off";
        live.until = due;
      } else {
        live.state = "retrying";
      }
      return live;
    }
    if (e.kind == "circuit_rejected") {
      live.state = "breaker_open";
      live.until = e.ts + NumberField(e.data_json, "retry_in").value_or(0);
      return live;
    }
    if (e.kind == "attempt_failed") {
      live.state = "retrying";
      return live;
    }
    if (e.kind == "attempt_started") {
      live.state = NumberField(e.data_json, "attempt").value_or(1) > 1 ? "retrying" : "running";
      return live;
    }
    if (e.kind == "node_started") return live;
  }
  return live;
}

LiveState DeriveLiveState(
    const std::string& label, const std::vector<NodeRecord>& waiting,
    const std::vector<std::pair<NodeRecord, std::vector<EventRecord>>>& running, double now) {
  if (label == "queued" || label == "interrupted") return Live(label);
  if (label != "running" && label != "waiting") return LiveState{};
  LiveState best = Live(label == "running" ? "running" : "");
  for (const NodeRecord& node : waiting) {
    WaitInfo info;
    if (!node.output_json || !ParseWaitInfo(*node.output_json, &info)) continue;
    if (info.signal.empty()) {
      Keep(&best, Live("waiting_timer", node.node, info.due));
    } else {
      Keep(&best, Live("waiting_signal", node.node, info.due, info.signal));
    }
  }
  if (label == "running") {
    for (const auto& [node, events] : running) {
      LiveState live = NodeLiveState(events, now);
      live.node = node.node;
      Keep(&best, std::move(live));
    }
  }
  // A waiting run whose wait records say nothing (written by an older keel).
  if (best.state.empty()) best.state = "waiting_signal";
  return best;
}

Result<LiveState> ReadLiveState(Store& store, const RunRecord& run, const std::string& label,
                                double now) {
  if (label != "running" && label != "waiting") return DeriveLiveState(label, {}, {}, now);
  auto waiting = store.GetNodesInStatus(run.id, NodeStatus::kWaiting, 20);
  if (!waiting.ok()) return waiting.status();
  std::vector<std::pair<NodeRecord, std::vector<EventRecord>>> running;
  if (label == "running") {
    auto nodes = store.GetNodesInStatus(run.id, NodeStatus::kRunning, 20);
    if (!nodes.ok()) return nodes.status();
    for (NodeRecord& node : *nodes) {
      auto events = store.GetNodeEvents(run.id, node.node, 50);
      if (!events.ok()) return events.status();
      running.emplace_back(std::move(node), std::move(*events));
    }
  }
  return DeriveLiveState(label, *waiting, running, now);
}

}  // namespace keel
