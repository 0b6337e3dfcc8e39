#pragma once
// Worker: the loop of `keel worker` (and of `keel run` on PostgreSQL, which
// works on its own run in-process). It registers one row per process,
// heartbeats it every lease/3, claims ready nodes of any run up to its free
// slots, runs each on a thread of its own through the Executor
// (cli/worker_node.h) and commits the outcome fenced by the claim
// (store/postgres/pg_node_queue.h). It also claims the escalations of
// runs that settled failed (store/postgres/pg_escalations.h) and runs each
// on a thread of its own through Executor::Escalate, recording it fenced by
// its claim (cli/worker_escalation.cc). It wakes on LISTEN keel_ready, on a
// jittered poll (200-500 ms) and when a slot frees, re-queues claims whose
// worker stopped heartbeating, and stops its own nodes, committing nothing,
// once it could not reach the database for a whole lease.
//
// Thread-safety: RequestStop and Abandon may be called from any thread
// (a signal-handling thread); Run from one thread, once.

#include <atomic>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include "cli/claim_store.h"
#include "engine/arena_pool.h"
#include "engine/mutex.h"
#include "engine/status.h"
#include "engine/store_quota_source.h"
#include "engine/workflow_index.h"
#include "scripts/workflow_loader.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_escalations.h"
#include "store/postgres/pg_node_queue.h"
#include "store/postgres/pg_store.h"

namespace keel::cli {

struct WorkerOptions {
  std::string url;       // postgresql://...
  int concurrency = 16;  // nodes at once
  double lease_s = 15;   // seconds without a heartbeat before its claims go back
  // When set, Run returns once this run is recorded finished (or parked);
  // with `claim` false it only waits for that (keel run --no-work).
  std::string until_run;
  bool claim = true;
  // With until_run: a run parked on its waits is not yet done (keel run
  // --wait); workers wake the waits when their signal or timer comes.
  bool hold_waits = false;
};

class Worker {
 public:
  explicit Worker(WorkerOptions options);
  ~Worker();

  // Connects, brings the schema up to date and registers. Fails naming the
  // database (password redacted).
  Status Start();
  // Works until RequestStop (or until_run is settled); returns once every
  // node it runs has finished and was committed or handed back, after
  // unregistering. Fails when the database is lost for good at start.
  Status Run();
  // Stops claiming; nodes in flight finish and commit. Any thread.
  void RequestStop();
  // Stops the nodes in flight (cancelled) and hands their claims back,
  // committing nothing. Any thread.
  void Abandon(const std::string& why);

  const std::string& id() const { return id_; }

 private:
  struct InFlight {
    pg::NodeClaim claim;
    ClaimStore* store = nullptr;
    Executor* executor = nullptr;
    bool abandoned = false;
  };

  // An escalation this worker runs (cli/worker_escalation.cc).
  struct Escalating {
    pg::EscalationClaim claim;
    ClaimStore* store = nullptr;
    Executor* executor = nullptr;
    bool abandoned = false;
  };

  void HeartbeatLoop();
  void ReapDeadWorkers(pg::Connection& conn);
  // Settles the runs whose last commit did not (pg::IdleRuns).
  void SettleIdleRuns(pg::Connection& conn);
  // Stops the nodes this worker runs whose claim ended (re-queued, or
  // cancelled by a join that went ahead without them) and its escalations
  // whose claim ended (StopEndedEscalations), and hands back the claims it
  // holds but runs no node for. Main loop thread only.
  void StopEndedClaims(pg::Connection& conn);
  // Hands back the claims in `current` (this worker's claims in the
  // database) that are not held_, when they were not held at the
  // previous call either: a node whose run could not be read, a child
  // claimed by a commit whose answer was lost. Main loop thread only.
  void HandBackOrphans(pg::Connection& conn, const std::vector<pg::NodeClaim>& current);
  // Writes the inner records (map items, a call's nodes) and history the
  // nodes in flight produced so far, each node's fenced by its claim, one
  // round trip per node with something new; stops a node whose claim
  // ended. Main loop thread.
  void FlushInner(pg::Connection& conn);
  void RunClaims(pg::NodeClaim first);
  // Runs one claim; returns the children it claimed on commit.
  std::vector<pg::NodeClaim> RunOne(const pg::NodeClaim& claim);
  // Runs escalation `claim` to its end and records it, fenced by the claim;
  // hands it back when the run cannot be read.
  void Escalate(const pg::EscalationClaim& claim);
  // Stops the escalations this worker runs whose claim ended (another
  // worker claimed them after this one's lease ran out). Main loop thread.
  void StopEndedEscalations(pg::Connection& conn);
  Result<std::shared_ptr<LoadedScript>> ScriptFor(pg::Connection& conn, const std::string& run_id,
                                                  const std::string& key);
  // The index of `workflow`, one of a script of scripts_ (which keeps it
  // alive for the worker's life); made on first use, under its own lock so
  // that a script loading meanwhile does not hold it up. Any slot thread.
  const WorkflowIndex* IndexFor(const WorkflowSpec* workflow);
  bool Settled(pg::Connection& conn);
  // Whether until_run, settled with `status` by a commit, is done for Run.
  bool Ends(const std::string& run_id, RunStatus status) const;
  void Wake();
  void WaitForWork(pg::Connection& listen, double seconds);

  const WorkerOptions options_;
  std::string id_;
  pg::Pool pool_;
  int wake_fd_ = -1;  // an eventfd: a slot freed, or a stop was asked
  std::atomic<bool> stopping_{false};
  std::atomic<bool> done_{false};  // until_run settled
  // A commit gave up on a transient error (a full disk, a lost server) and
  // none went through since: said once a spell.
  std::atomic<bool> commits_failing_{false};
  Mutex mu_;
  CondVar cv_;
  int inflight_ GUARDED_BY(mu_) = 0;
  int64_t next_slot_ GUARDED_BY(mu_) = 0;
  std::map<int64_t, InFlight> running_ GUARDED_BY(mu_);
  std::map<int64_t, Escalating> escalating_ GUARDED_BY(mu_);  // by slot, like running_
  // The claims this worker runs or is about to run (from the moment it
  // learns of them to the end of their RunOne).
  using ClaimKey = std::tuple<std::string, std::string, int64_t>;
  static ClaimKey KeyOf(const pg::NodeClaim& c) { return {c.run_id, c.node, c.attempt}; }
  std::set<ClaimKey> held_ GUARDED_BY(mu_);
  std::set<ClaimKey> orphan_candidates_;  // main loop thread only
  std::string abandon_reason_ GUARDED_BY(mu_);
  BreakerBook breakers_;  // breakers while the shared store cannot be reached
  // The arenas of one slot its nodes and escalations run in, each on the
  // thread that runs it; reused, never made per node (engine/arena_pool.h).
  ArenaPool arenas_{1};
  // The database as a Store, shared by every host: circuit breakers and
  // signals of the nodes this worker runs, and through quotas_ the
  // providers' rate limits (opened by Start; quotas_ detached at the end of Run).
  std::unique_ptr<PostgresStore> shared_;
  std::shared_ptr<StoreQuotaSource> quotas_;
  Mutex script_mu_;  // held while loading, so one script loads once
  std::map<std::string, std::shared_ptr<LoadedScript>> scripts_ GUARDED_BY(script_mu_);
  Mutex index_mu_;
  std::map<const WorkflowSpec*, std::unique_ptr<WorkflowIndex>> indexes_ GUARDED_BY(index_mu_);
};

}  // namespace keel::cli
