// Worker's upkeep of its claims and of the cluster: heartbeats and what a
// lost database makes it give up, nodes and escalations whose claims ended,
// claims it holds but runs nothing for, long nodes' inner records, dead
// workers of its host and runs left unsettled.

#include <cstdio>
#include <set>

#include "cli/recorded_script.h"
#include "cli/worker.h"
#include "cli/worker_note.h"
#include "engine/clock.h"
#include "engine/executor.h"
#include "engine/process_owner.h"

namespace keel::cli {

void Worker::ReapDeadWorkers(pg::Connection& conn) {
  // Workers of this host whose process is gone (killed, crashed) give their
  // nodes back now rather than when their lease runs out.
  (void)pg::ReapDeadWorkers(conn, CurrentOwner().host,
                            [](const Owner& owner) { return OwnerAlive(owner, 0); });
}

void Worker::SettleIdleRuns(pg::Connection& conn) {
  auto idle = pg::IdleRuns(conn);
  if (!idle.ok()) return;
  for (const std::string& run_id : *idle) {
    auto work = pg::ReadRunToWork(conn, run_id, /*with_script=*/false, /*with_nodes=*/false);
    if (!work.ok()) continue;
    auto script = ScriptFor(conn, run_id, work->script_key);
    const WorkflowSpec* workflow = script.ok() ? (*script)->Find(work->run.workflow) : nullptr;
    if (workflow == nullptr) continue;  // a worker that can load it settles it
    auto settled = pg::SettleIdleRun(conn, *workflow, run_id, SystemClock()->WallNow());
    if (settled.ok() && settled->settled && !settled->escalation_due &&
        Ends(run_id, settled->status)) {
      done_.store(true);
    }
  }
}

void Worker::Abandon(const std::string& why) {
  std::vector<pg::NodeClaim> claims;
  std::vector<pg::EscalationClaim> escalations;
  {
    MutexLock lock(&mu_);
    if (abandon_reason_.empty()) abandon_reason_ = why;
    for (auto& [slot, f] : running_) {
      if (f.abandoned) continue;
      f.abandoned = true;
      f.store->Fail(why);
      f.executor->Stop(why);
      claims.push_back(f.claim);
    }
    for (auto& [slot, e] : escalating_) {
      if (e.abandoned) continue;
      e.abandoned = true;
      e.store->Fail(why);
      e.executor->Stop(why);
      escalations.push_back(e.claim);
    }
  }
  if (claims.empty() && escalations.empty()) return;
  if (!claims.empty()) Note("stopped " + std::to_string(claims.size()) + " node(s): " + why);
  if (!escalations.empty()) {
    Note("stopped " + std::to_string(escalations.size()) + " escalation(s): " + why);
  }
  // Without a connection their claims go back once this worker's lease runs out.
  auto conn = pool_.Acquire();
  if (!conn.ok()) return;
  (void)pg::HandBack(**conn, id_, claims);
  for (const pg::EscalationClaim& claim : escalations) {
    (void)pg::HandBackEscalation(**conn, id_, claim);
  }
}

void Worker::HeartbeatLoop() {
  double last_ok = MonoNow();
  bool lost = false;     // its nodes were stopped for want of a lease
  bool failing = false;  // the last heartbeat failed
  MutexLock lock(&mu_);
  while (!stopping_.load() || inflight_ > 0) {
    cv_.WaitFor(&mu_, std::chrono::duration<double>(options_.lease_s / 3));
    if (stopping_.load() && inflight_ == 0) break;
    lock.Unlock();
    Status beat = [&]() -> Status {
      auto conn = pool_.Acquire();
      if (!conn.ok()) return conn.status();
      Status s = pg::WorkerHeartbeat(**conn, id_);
      if (!s.ok() && s.kind() == ErrorKind::kPermanent) {
        // The row went (a clean-up); register again.
        s = pg::RegisterWorker(**conn, id_, CurrentOwner(), options_.lease_s);
      }
      return s;
    }();
    if (beat.ok()) {
      if (failing) Note("renewing its lease again");
      failing = false;
      last_ok = MonoNow();
      lost = false;
    } else if (!failing) {
      // Said once a spell: the database may refuse for a while (a restart,
      // a failover, a read-only server).
      failing = true;
      Note("cannot renew its lease: " + beat.message());
    }
    if (!beat.ok() && MonoNow() - last_ok > options_.lease_s && !lost) {
      lost = true;
      Abandon("cannot reach the database for a whole lease (" + beat.message() + ")");
    }
    lock.Lock();
  }
}

void Worker::StopEndedClaims(pg::Connection& conn) {
  StopEndedEscalations(conn);
  std::vector<int64_t> slots;
  {
    MutexLock lock(&mu_);
    for (const auto& [slot, f] : running_) {
      if (!f.abandoned) slots.push_back(slot);
    }
  }
  // Read after the slots were listed: each of them was claimed before.
  auto current = pg::CurrentClaims(conn, id_);
  if (!current.ok()) return;
  HandBackOrphans(conn, *current);
  MutexLock lock(&mu_);
  for (int64_t slot : slots) {
    auto it = running_.find(slot);
    if (it == running_.end() || it->second.abandoned) continue;
    InFlight& f = it->second;
    bool held = false;
    for (const pg::NodeClaim& c : *current) {
      held = held || (c.run_id == f.claim.run_id && c.node == f.claim.node &&
                      c.attempt == f.claim.attempt);
    }
    if (held) continue;
    f.abandoned = true;
    std::string why = "the claim of node " + f.claim.node + " of run " + f.claim.run_id +
                      " ended: cancelled, or taken over by another worker";
    f.store->Fail(why);
    f.executor->Stop(why);
    Note("stopping node " + f.claim.node + " of run " + f.claim.run_id +
         ": its claim ended (cancelled, or taken over by another worker)");
  }
}

void Worker::HandBackOrphans(pg::Connection& conn, const std::vector<pg::NodeClaim>& current) {
  std::set<ClaimKey> orphans;
  {
    MutexLock lock(&mu_);
    for (const pg::NodeClaim& c : current) {
      if (held_.count(KeyOf(c)) == 0) orphans.insert(KeyOf(c));
    }
  }
  // A claim seen orphaned twice in a row is not one on its way to a slot.
  std::vector<pg::NodeClaim> back;
  for (const ClaimKey& key : orphans) {
    if (orphan_candidates_.count(key)) {
      back.push_back({std::get<0>(key), std::get<1>(key), std::get<2>(key)});
    }
  }
  orphan_candidates_ = std::move(orphans);
  if (back.empty()) return;
  if (pg::HandBack(conn, id_, back).ok()) {
    Note("handed back " + std::to_string(back.size()) +
         " claimed node(s) this worker could not run");
    for (const pg::NodeClaim& c : back) orphan_candidates_.erase(KeyOf(c));
  }
}

void Worker::FlushInner(pg::Connection& conn) {
  MutexLock lock(&mu_);
  std::vector<int64_t> slots;
  for (const auto& entry : running_) slots.push_back(entry.first);
  for (int64_t slot : slots) {
    // Looked up afresh: while the lock was let go for the last write, RunOne
    // may have erased the entry.
    auto it = running_.find(slot);
    if (it == running_.end() || it->second.abandoned) continue;
    ClaimStore* store = it->second.store;
    const pg::NodeClaim claim = it->second.claim;
    std::vector<NodeRecord> records;
    std::vector<EventRecord> events;
    store->flush_mu.Lock();
    store->TakeInner(claim.node, &records, &events);
    if (records.empty() && events.empty()) {
      store->flush_mu.Unlock();
      continue;
    }
    // The store stays while flush_mu is held: RunOne, having erased the
    // entry, waits for it before it takes the store's buffers and ends.
    lock.Unlock();
    auto written = pg::WriteUnderClaim(conn, claim, id_, records, events);
    if (!written.ok()) store->Restore(std::move(records), std::move(events));
    store->flush_mu.Unlock();
    lock.Lock();
    it = running_.find(slot);
    if (written.ok() && !*written && it != running_.end() && !it->second.abandoned) {
      it->second.abandoned = true;
      std::string why = "the claim of node " + claim.node + " of run " + claim.run_id + " ended";
      it->second.store->Fail(why);
      it->second.executor->Stop(why);
    }
    if (!written.ok()) {
      // Not written: they go with the node's commit instead, or the next sweep.
      Note("cannot write the inner records of node " + claim.node + ": " +
           written.status().message());
      return;  // the database is not answering: the others wait for the next sweep
    }
  }
}

}  // namespace keel::cli
