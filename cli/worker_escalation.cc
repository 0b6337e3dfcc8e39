// Worker's escalations of distributed runs (store/postgres/pg_escalations.h):
// running one it claimed through Executor::Escalate with the run's recorded
// script, as `keel run` escalates in one process, and recording it fenced
// by the claim; stopping those whose claim another worker took over.
// Escalate runs on a thread of its own per claimed escalation;
// StopEndedEscalations on the worker's main loop thread.

#include <chrono>
#include <thread>

#include "cli/recorded_script.h"
#include "cli/worker.h"
#include "cli/worker_note.h"
#include "engine/clock.h"
#include "engine/escalation.h"
#include "engine/event_data.h"
#include "engine/executor.h"

namespace keel::cli {
namespace {

// The events framing escalation `claim`, as RunEscalation records them:
// escalation_started, and escalation_finished failed with `error` for one
// that cannot run here (its script does not load, its workflow is gone).
EventRecord Started(const pg::EscalationClaim& claim, double now) {
  return {claim.run_id,
          0,
          now,
          "",
          "escalation_started",
          EventData()
              .Add("workflow", claim.workflow)
              .Add("escalation", claim.number)
              .Add("error", claim.error)
              .Done()};
}
EventRecord NotRun(const pg::EscalationClaim& claim, const std::string& error, double now) {
  return {claim.run_id,
          0,
          now,
          "",
          "escalation_finished",
          EventData()
              .Add("workflow", claim.workflow)
              .Add("escalation", claim.number)
              .Add("status", RunStatusName(RunStatus::kFailed))
              .Add("error", error)
              .Done()};
}

}  // namespace

void Worker::Escalate(const pg::EscalationClaim& claim) {
  const std::string name = "escalation " + std::to_string(claim.number) + " of run " + claim.run_id;
  std::shared_ptr<LoadedScript> script;
  std::string failed;  // why it cannot run here
  JsonText params;
  {
    auto conn = pool_.Acquire();
    if (!conn.ok()) {
      Note("cannot run " + name + ": " + conn.status().message());
      return;  // its claim goes back once this worker's lease runs out
    }
    auto work = pg::ReadRunToWork(**conn, claim.run_id, /*with_script=*/false,
                                  /*with_nodes=*/false);
    if (!work.ok()) {
      Note("cannot run " + name + ": " + work.status().message());
      (void)pg::HandBackEscalation(**conn, id_, claim);
      return;
    }
    params = MakeJson(work->run.params_json);
    // Recorded now, so the run shows it escalating; once, whoever ends it.
    auto started =
        pg::StartEscalation(**conn, claim, id_, Started(claim, SystemClock()->WallNow()));
    if (!started.ok() || !*started) {
      Note("cannot start " + name + ": " +
           (started.ok() ? "its claim ended" : started.status().message()));
      if (!started.ok()) (void)pg::HandBackEscalation(**conn, id_, claim);
      return;
    }
    auto loaded = ScriptFor(**conn, claim.run_id, work->script_key);
    if (!loaded.ok()) {
      failed = "the script of run " + claim.run_id +
               " does not load on this worker: " + loaded.status().message();
    } else if ((*loaded)->Find(claim.workflow) == nullptr) {
      failed = "workflow '" + claim.workflow + "', the on_failure of run " + claim.run_id +
               ", is not declared in its script";
    } else {
      script = *loaded;
    }
  }
  std::vector<NodeRecord> records;
  std::vector<EventRecord> events;
  if (script) {
    ClaimStore store(&breakers_, shared_.get());
    Executor executor(script->clock, &store, nullptr);
    int64_t slot;
    {
      MutexLock lock(&mu_);
      slot = next_slot_++;
      escalating_[slot] = {claim, &store, &executor, false};
    }
    ExecutorOptions options;
    options.arenas = &arenas_;  // this thread: a worker runs many nodes and escalations at once
    options.library = &script->workflows;
    (void)executor.Escalate(*script->Find(claim.workflow), claim.run_id, params, claim.number,
                            MakeJson(claim.failure_json), claim.error, options);
    bool abandoned;
    {
      MutexLock lock(&mu_);
      abandoned = escalating_[slot].abandoned;
      escalating_.erase(slot);
    }
    if (abandoned) return;
    // The escalation's own records and events (breakers went to the shared
    // store); escalation_started was recorded above.
    const std::string prefix = EscalationPrefix(claim.number);
    for (NodeRecord& rec : store.TakeRecords()) {
      if (rec.node.compare(0, prefix.size(), prefix) == 0) records.push_back(std::move(rec));
    }
    for (EventRecord& e : store.TakeEvents()) {
      if (e.node.empty() ? e.kind != "escalation_started"
                         : e.node.compare(0, prefix.size(), prefix) == 0) {
        events.push_back(std::move(e));
      }
    }
  } else {
    Note("cannot run " + name + ": " + failed);
    events.push_back(NotRun(claim, failed, SystemClock()->WallNow()));
  }
  double began = MonoNow();
  for (;;) {
    Status error;
    {
      auto conn = pool_.Acquire();
      if (conn.ok()) {
        auto done = pg::FinishEscalation(**conn, claim, id_, records, events);
        if (done.ok()) {
          if (!*done) {
            Note(name + " was taken over by another worker; what it did here is discarded");
          }
          if (claim.run_id == options_.until_run) Wake();
          return;
        }
        error = done.status();
      } else {
        error = conn.status();
      }
    }
    if (error.kind() != ErrorKind::kTransient || MonoNow() - began > options_.lease_s) {
      Note("cannot record " + name + ": " + error.message());
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void Worker::StopEndedEscalations(pg::Connection& conn) {
  std::vector<int64_t> slots;
  {
    MutexLock lock(&mu_);
    for (const auto& [slot, e] : escalating_) {
      if (!e.abandoned) slots.push_back(slot);
    }
  }
  if (slots.empty()) return;
  // Read after the slots were listed: each of them was claimed before.
  auto current = pg::CurrentEscalations(conn, id_);
  if (!current.ok()) return;
  MutexLock lock(&mu_);
  for (int64_t slot : slots) {
    auto it = escalating_.find(slot);
    if (it == escalating_.end() || it->second.abandoned) continue;
    Escalating& e = it->second;
    bool held = false;
    for (const pg::EscalationClaim& c : *current) {
      held = held || (c.run_id == e.claim.run_id && c.number == e.claim.number &&
                      c.attempt == e.claim.attempt);
    }
    if (held) continue;
    e.abandoned = true;
    const std::string name =
        "escalation " + std::to_string(e.claim.number) + " of run " + e.claim.run_id;
    std::string why = "the claim of " + name + " ended: taken over by another worker";
    e.store->Fail(why);
    e.executor->Stop(why);
    Note("stopping " + name + ": its claim ended (taken over by another worker)");
  }
}

}  // namespace keel::cli
