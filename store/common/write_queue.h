#pragma once
// WriteQueue: the queue of a store's queued writes (Store::SaveNode,
// FinishNode, AppendEvent, FinishRun, Heartbeat) and the writer thread that
// commits them, whatever the database: group commit, queue order, retries
// with backoff, and giving up after a stall (engine/store.h's contract).
//
// Thread-safety: every public method may be called from any thread. One
// writer thread, owned by the queue, calls the Backend; the Backend's
// methods run on that thread only.
//
// How it drains: woken by a record, the writer lets a burst gather for a
// few milliseconds (less when someone waits for it), then hands every
// record queued, up to the next synchronous call, to Backend::Commit as one
// transaction. A commit either writes all of its records or none; one that
// fails is retried whole, with backoff (10 ms doubling to 1 s), holding
// every later write back. When it has kept failing for `stall_timeout`
// seconds, or at once when Backend::Hopeless says retrying cannot help, the
// writer gives up: Health() and Flush() return the cause from then on,
// queued writes are dropped and nothing more is committed, so what is
// durable stays a prefix of the queue. Only the writer thread gives up,
// between two attempts.

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "engine/mutex.h"
#include "engine/store.h"

namespace keel {

// The queued writes, as Store's methods take them.
struct QueuedNodeFinish {
  NodeRecord node;
  EventRecord event;
};
struct QueuedRunFinish {
  std::string run_id;
  RunStatus status = RunStatus::kFailed;
  std::string error;
  double finished_at = 0;
};
struct QueuedHeartbeat {
  std::string run_id;
  double now = 0;
};
using QueuedRecord =
    std::variant<NodeRecord, QueuedNodeFinish, EventRecord, QueuedRunFinish, QueuedHeartbeat>;

class WriteQueue {
 public:
  // What the writer thread calls; implemented by each store.
  class Backend {
   public:
    virtual ~Backend() = default;
    // Commits `records` (consecutive in queue order) in one transaction:
    // all of them, or none and the failure.
    virtual Status Commit(const std::vector<const QueuedRecord*>& records) = 0;
    // Whether a commit that failed with `failure` can never succeed (the
    // run was taken over): the writer then gives up at once, kPermanent.
    virtual bool Hopeless(const Status& failure) = 0;
    // Appended to the cause of giving up after `seconds` of failures.
    virtual std::string StallDetail(const Status& failure, double seconds);
  };

  // Starts the writer thread. `backend` must outlive the queue.
  WriteQueue(Backend* backend, double stall_timeout);
  // Commits everything queued, then stops the writer thread.
  ~WriteQueue();
  WriteQueue(const WriteQueue&) = delete;
  WriteQueue& operator=(const WriteQueue&) = delete;

  void Push(QueuedRecord record);
  // Runs `fn` on the writer thread and returns its status: after every
  // record queued before, or, when `urgent`, ahead of what still waits.
  // Once the queue has given up, returns why without running `fn`.
  Status Call(std::function<Status()> fn, bool urgent = false);
  // See Store::Flush, Store::WriteHealth and Store::Backlog.
  Status Flush();
  Status Health();
  uint64_t Backlog();

 private:
  struct SyncCall {
    std::function<Status()> fn;
    Status result;      // guarded by mu_
    bool done = false;  // guarded by mu_
  };
  using Write = std::variant<QueuedRecord, SyncCall*>;
  // Writes are queued in chunks of fixed capacity, so a long queue never
  // moves records to grow, and drained chunks are reused.
  using Chunk = std::vector<Write>;
  static constexpr size_t kChunkSize = 256;
  // Queued records that end a gathering writer's wait early.
  static constexpr uint64_t kGatherMax = 4 * kChunkSize;
  // Held, with mu_ locked, by a caller waiting for the writer: a writer
  // gathering a burst commits at once instead.
  struct Hurry {
    explicit Hurry(WriteQueue* queue) EXCLUSIVE_LOCKS_REQUIRED(queue->mu_);
    ~Hurry();
    Hurry(const Hurry&) = delete;
    Hurry& operator=(const Hurry&) = delete;
    WriteQueue* const queue_;
  };

  void Enqueue(Write write);
  void WriterLoop();
  // Commits `batch` in order: runs of records as single transactions, sync
  // calls between them; retries a failed run of records until it goes
  // through or the writer gives up. Called without mu_.
  void Drain(const std::vector<Chunk>& batch);
  // Retries `records` until committed (true) or given up (false).
  bool Retry(const std::vector<const QueuedRecord*>& records, Status failure);
  void RunUrgent();
  void EndCall(SyncCall* call, Status result);

  Backend* const backend_;
  const double stall_timeout_;

  Mutex mu_;
  CondVar work_cv_;  // the writer waits here for work or stop_
  CondVar done_cv_;  // Flush and sync calls wait here for the writer
  std::vector<Chunk> queue_ GUARDED_BY(mu_);
  std::vector<Chunk> spare_ GUARDED_BY(mu_);
  std::vector<SyncCall*> urgent_ GUARDED_BY(mu_);
  uint64_t queued_ GUARDED_BY(mu_) = 0;   // writes ever queued
  uint64_t written_ GUARDED_BY(mu_) = 0;  // writes ever committed or dropped
  Status given_up_ GUARDED_BY(mu_);       // set once, by the writer thread
  bool writer_idle_ GUARDED_BY(mu_) = false;
  bool gathering_ GUARDED_BY(mu_) = false;
  int hurry_ GUARDED_BY(mu_) = 0;
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread writer_thread_;
};

}  // namespace keel
