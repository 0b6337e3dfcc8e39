#include "cli/worker.h"

#include <libpq-fe.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "cli/claim_store.h"
#include "cli/recorded_script.h"
#include "cli/worker_node.h"
#include "cli/worker_note.h"
#include "engine/clock.h"
#include "engine/executor.h"
#include "engine/process_owner.h"
#include "engine/run_history.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_wait_wakes.h"

namespace keel::cli {
namespace {

// How often the main loop re-queues expired claims, stops nodes whose
// claim ended and writes long nodes' inner records.
constexpr double kSweepSeconds = 0.2;

std::string NewWorkerId() {
  Owner self = CurrentOwner();
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "%04x", static_cast<unsigned>(rd() & 0xffff));
  return self.host + ":" + std::to_string(self.pid) + ":" + suffix;
}

}  // namespace

Worker::Worker(WorkerOptions options)
    : options_(std::move(options)),
      id_(NewWorkerId()),
      pool_(pg::WithTimeouts(options_.url, options_.lease_s), options_.concurrency + 2) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

Worker::~Worker() {
  if (wake_fd_ >= 0) close(wake_fd_);
}

Status Worker::Start() {
  auto conn = pool_.Acquire();
  if (!conn.ok()) return conn.status();
  Status migrated = pg::Migrate(**conn);
  if (!migrated.ok()) return migrated;
  auto shared = PostgresStore::Open(options_.url, PostgresStoreOptions());
  if (!shared.ok()) return shared.status();
  shared_ = std::move(*shared);
  quotas_ = std::make_shared<StoreQuotaSource>(SystemClock());
  quotas_->Attach(shared_.get());
  if (!options_.claim) return Status::Ok();
  Status registered = pg::RegisterWorker(**conn, id_, CurrentOwner(), options_.lease_s);
  if (!registered.ok()) return registered;
  ReapDeadWorkers(**conn);
  return Status::Ok();
}

void Worker::Wake() {
  uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof one);
}

void Worker::RequestStop() {
  stopping_.store(true);
  Wake();
  MutexLock lock(&mu_);
  cv_.SignalAll();
}

Result<std::shared_ptr<LoadedScript>> Worker::ScriptFor(pg::Connection& conn,
                                                        const std::string& run_id,
                                                        const std::string& key) {
  MutexLock lock(&script_mu_);
  auto it = scripts_.find(key);
  if (it != scripts_.end()) return it->second;
  auto work = pg::ReadRunToWork(conn, run_id, /*with_script=*/true);
  if (!work.ok()) return work.status();
  auto script = LoadRecordedScript(work->script, quotas_);
  if (!script.ok()) return script.status();
  scripts_.emplace(key, *script);
  return *script;
}

const WorkflowIndex* Worker::IndexFor(const WorkflowSpec* workflow) {
  MutexLock lock(&index_mu_);
  std::unique_ptr<WorkflowIndex>& index = indexes_[workflow];
  if (!index) index = std::make_unique<WorkflowIndex>(*workflow);
  return index.get();
}

std::vector<pg::NodeClaim> Worker::RunOne(const pg::NodeClaim& claim) {
  std::shared_ptr<LoadedScript> script;
  std::string load_error;
  pg::RunToWork work;
  RunHistory history;  // what earlier attempts of the node left to go on from
  const WorkflowIndex* index = nullptr;  // of the run's workflow, once its script loaded
  {
    auto conn = pool_.Acquire();
    if (!conn.ok()) {
      Note(conn.status().message());
      return {};
    }
    auto read = pg::ReadRunToWork(**conn, claim.run_id, /*with_script=*/false,
                                  /*with_nodes=*/false);
    if (!read.ok()) {
      Note(read.status().message());
      return {};
    }
    auto loaded = ScriptFor(**conn, claim.run_id, read->script_key);
    work = std::move(*read);
    if (loaded.ok()) {
      // The records this node needs: its dependencies' and its own inner ones.
      const WorkflowSpec* wf = (*loaded)->Find(work.run.workflow);
      if (wf != nullptr) index = IndexFor(wf);
      int self = index ? index->Find(claim.node) : -1;
      std::vector<std::string> deps;
      if (self >= 0) deps = wf->nodes[self].after;
      // Its history, and its failures: a wait that timed out and was
      // resumed is reached afresh.
      std::vector<std::string> kinds = HistoryKinds();
      kinds.push_back("node_failed");
      auto inputs = pg::ReadNodeInputs(**conn, claim.run_id, deps, claim.node, kinds);
      if (!inputs.ok()) {
        Note(inputs.status().message());
        return {};
      }
      work.nodes = std::move(inputs->records);
      history = ReadRunHistory(inputs->history);
    }
    if (work.run.status != RunStatus::kRunning) {
      // Finished or cancelled meanwhile: the commit of nothing is refused,
      // and logged as such.
      pg::NodeCommit nothing;
      nothing.claim = claim;
      nothing.worker = id_;
      (void)pg::CommitNode(**conn, nullptr, nothing, SystemClock()->WallNow());
      return {};
    }
    if (!loaded.ok()) {
      load_error = "the script of run " + claim.run_id +
                   " does not load on this worker: " + loaded.status().message();
      Note(load_error);
    } else {
      script = *loaded;
    }
  }
  const WorkflowSpec* workflow = script ? script->Find(work.run.workflow) : nullptr;
  WorkflowSpec missing;
  missing.name = work.run.workflow;
  Clock* clock = script ? script->clock : SystemClock();
  ClaimStore store(&breakers_, shared_.get());
  Executor executor(clock, &store, nullptr);
  int64_t slot;
  {
    MutexLock lock(&mu_);
    slot = next_slot_++;
    running_[slot] = {claim, &store, &executor, false};
  }
  NodeRun ran = script ? RunClaimedNode(executor, store, &arenas_, workflow ? *workflow : missing,
                                        script->workflows, work.run, claim.node, work.nodes,
                                        history, clock->WallNow())
                       : FailedNode(work.run, claim.node, load_error, clock->WallNow());
  bool abandoned;
  {
    MutexLock lock(&mu_);
    abandoned = running_[slot].abandoned;
    running_.erase(slot);
  }
  {
    MutexLock flushing(&store.flush_mu);  // waits for a flush under way
  }
  if (abandoned) return {};
  // What a failed flush put back goes with the commit, ahead of the node's record.
  std::vector<NodeRecord> left;
  for (NodeRecord& rec : store.TakeRecords()) {
    if (InsideNode(rec.node, claim.node)) left.push_back(std::move(rec));
  }
  ran.records.insert(ran.records.begin(), std::make_move_iterator(left.begin()),
                     std::make_move_iterator(left.end()));
  for (EventRecord& e : store.TakeEvents()) {
    if (InsideNode(e.node, claim.node) || (e.node == claim.node && IsHistoryKind(e.kind))) {
      ran.events.push_back(std::move(e));
    }
  }

  pg::NodeCommit commit;
  commit.claim = claim;
  commit.worker = id_;
  commit.records = std::move(ran.records);
  commit.events = std::move(ran.events);
  commit.claim_next = stopping_.load() ? 0 : 1;
  commit.index = workflow != nullptr ? index : nullptr;
  double began = MonoNow();
  for (;;) {
    Status failed;
    {
      auto conn = pool_.Acquire();
      if (conn.ok()) {
        auto done = pg::CommitNode(**conn, workflow, commit, SystemClock()->WallNow());
        if (done.ok()) {
          if (commits_failing_.exchange(false)) Note("committing nodes again");
          if (done->run_settled && !done->escalation_due && Ends(claim.run_id, done->run_status)) {
            done_.store(true);
            Wake();
          }
          return std::move(done->claimed);
        }
        failed = done.status();
      } else {
        failed = conn.status();
      }
    }
    // A commit that did not go through may be tried again: one whose claim
    // was taken meanwhile changes nothing.
    if (failed.kind() != ErrorKind::kTransient || MonoNow() - began > options_.lease_s) {
      // Said once a spell, like a failing heartbeat: a full disk refuses
      // every node's commit until space frees; the nodes go back meanwhile.
      if (failed.kind() != ErrorKind::kTransient || !commits_failing_.exchange(true)) {
        Note("cannot commit node " + claim.node + " of run " + claim.run_id + ": " +
             failed.message());
      }
      return {};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

void Worker::RunClaims(pg::NodeClaim first) {
  std::vector<pg::NodeClaim> todo{std::move(first)};
  while (!todo.empty()) {
    pg::NodeClaim claim = std::move(todo.back());
    todo.pop_back();
    std::vector<pg::NodeClaim> next = RunOne(claim);
    {
      MutexLock lock(&mu_);
      held_.erase(KeyOf(claim));
      for (const pg::NodeClaim& child : next) held_.insert(KeyOf(child));
    }
    todo.insert(todo.end(), next.begin(), next.end());
  }
  Wake();
  MutexLock lock(&mu_);
  --inflight_;
  cv_.SignalAll();
}

bool Worker::Settled(pg::Connection& conn) {
  auto run = conn.Exec("SELECT status FROM runs WHERE id = $1", {options_.until_run},
                       "reading run " + options_.until_run);
  if (!run.ok() || run->size() != 1) return false;
  RunStatus status = RunStatus::kRunning;
  if (!ParseRunStatus(run->text(0, 0), &status) || !Ends(options_.until_run, status)) return false;
  // A run that settled failed is waited for until its escalation is recorded.
  auto open = pg::EscalationOpen(conn, options_.until_run);
  return open.ok() && !*open;
}

bool Worker::Ends(const std::string& run_id, RunStatus status) const {
  return run_id == options_.until_run && status != RunStatus::kRunning &&
         (status != RunStatus::kWaiting || !options_.hold_waits);
}

void Worker::WaitForWork(pg::Connection& listen, double seconds) {
  pollfd fds[2];
  int n = 0;
  fds[n++] = {wake_fd_, POLLIN, 0};
  int sock = listen.get() ? PQsocket(listen.get()) : -1;
  if (sock >= 0) fds[n++] = {sock, POLLIN, 0};
  (void)poll(fds, n, static_cast<int>(seconds * 1000));
  uint64_t count;
  while (read(wake_fd_, &count, sizeof count) > 0) {
  }
  if (sock >= 0 && PQconsumeInput(listen.get())) {
    while (PGnotify* note = PQnotifies(listen.get())) PQfreemem(note);
  }
}

Status Worker::Run() {
  std::thread warm_up(&Executor::WarmUp);
  auto listen = pg::Connection::Open(pool_.url());
  if (!listen.ok()) {
    warm_up.join();
    return listen.status();
  }
  bool listening = (*listen)->Exec(std::string("LISTEN ") + pg::kReadyChannel, {}, "listening").ok();
  std::thread heartbeat;
  if (options_.claim) heartbeat = std::thread(&Worker::HeartbeatLoop, this);
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> jitter(0.2, 0.5);
  struct Running {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  std::vector<Running> threads;
  auto reap = [&threads] {
    for (size_t i = 0; i < threads.size();) {
      if (threads[i].finished->load()) {
        threads[i].thread.join();
        threads[i] = std::move(threads.back());
        threads.pop_back();
      } else {
        ++i;
      }
    }
  };
  double last_reap = MonoNow();
  double last_sweep = 0;
  while (!stopping_.load() && !done_.load()) {
    auto conn = pool_.Acquire();
    if (conn.ok()) {
      // The sweeps run a few times a second, not at every wake-up: a
      // finishing node wakes the loop only to fill its slot.
      bool sweep = MonoNow() - last_sweep >= kSweepSeconds;
      if (sweep) last_sweep = MonoNow();
      if (sweep && !options_.until_run.empty() && Settled(**conn)) break;
      if (options_.claim) {
        if (MonoNow() - last_reap > 5) {
          ReapDeadWorkers(**conn);
          SettleIdleRuns(**conn);
          last_reap = MonoNow();
        }
        if (sweep) {
          (void)pg::RequeueExpired(**conn);
          (void)pg::WakeWaits(**conn, SystemClock()->WallNow());
          StopEndedClaims(**conn);
          FlushInner(**conn);
        }
        int free;
        {
          MutexLock lock(&mu_);
          free = options_.concurrency - inflight_;
        }
        if (free > 0) {
          auto claims = pg::ClaimReady(**conn, id_, free);
          if (claims.ok()) {
            for (pg::NodeClaim& claim : *claims) {
              {
                MutexLock lock(&mu_);
                ++inflight_;
                held_.insert(KeyOf(claim));
              }
              auto finished = std::make_shared<std::atomic<bool>>(false);
              threads.push_back({std::thread([this, finished, c = std::move(claim)]() mutable {
                                   RunClaims(std::move(c));
                                   finished->store(true);
                                 }),
                                 finished});
            }
            if (static_cast<int>(claims->size()) == free) continue;  // more may be ready
            free -= static_cast<int>(claims->size());
          }
        }
        // Escalations are few: looked for a few times a second, one at a time.
        if (sweep && free > 0) {
          auto escalation = pg::ClaimEscalation(**conn, id_);
          if (escalation.ok() && *escalation) {
            {
              MutexLock lock(&mu_);
              ++inflight_;
            }
            auto finished = std::make_shared<std::atomic<bool>>(false);
            threads.push_back({std::thread([this, finished, c = std::move(**escalation)] {
                                 Escalate(c);
                                 finished->store(true);
                                 Wake();
                                 MutexLock lock(&mu_);
                                 --inflight_;
                                 cv_.SignalAll();
                               }),
                               finished});
          }
        }
      }
    }
    if (!listening || !(*listen)->Healthy()) {
      listening = (*listen)->Healthy() &&
                  (*listen)->Exec(std::string("LISTEN ") + pg::kReadyChannel, {}, "listening").ok();
    }
    WaitForWork(**listen, jitter(rng));
    reap();
  }
  // Nodes in flight finish; those whose claim ended meanwhile are stopped.
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (inflight_ == 0) break;
      cv_.WaitFor(&mu_, std::chrono::milliseconds(300));
      if (inflight_ == 0) break;
    }
    if (!options_.claim) continue;
    auto conn = pool_.Acquire();
    if (conn.ok()) StopEndedClaims(**conn);
  }
  for (auto& t : threads) t.thread.join();
  RequestStop();
  if (heartbeat.joinable()) heartbeat.join();
  warm_up.join();
  if (options_.claim) {
    auto conn = pool_.Acquire();
    if (conn.ok()) (void)pg::UnregisterWorker(**conn, id_);
  }
  if (quotas_) quotas_->Attach(nullptr);
  return Status::Ok();
}

}  // namespace keel::cli
