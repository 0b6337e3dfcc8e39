#include "service/run_supervisor.h"

#include <algorithm>
#include <chrono>

#include "engine/clock.h"
#include "engine/event_data.h"
#include "engine/process_owner.h"

namespace keel::service {
namespace {

// How often the database is looked at when nothing wakes the supervisor.
constexpr auto kPollInterval = std::chrono::milliseconds(500);
// Candidates read per kind and pass.
constexpr int kBatch = 100;

}  // namespace

RunSupervisor::RunSupervisor(const ServiceOptions& options, Store* store, ChildRuns* children,
                             RunLauncher* launcher)
    : options_(options), store_(store), children_(children), launcher_(launcher) {}

RunSupervisor::~RunSupervisor() { Stop(); }

void RunSupervisor::Start() {
  MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread(&RunSupervisor::Loop, this);
}

void RunSupervisor::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void RunSupervisor::Wake() {
  {
    MutexLock lock(&mu_);
    woken_ = true;
  }
  cv_.SignalAll();
}

void RunSupervisor::Loop() {
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (!stop_ && !woken_) cv_.WaitFor(&mu_, kPollInterval);
      if (stop_) return;
      woken_ = false;
    }
    Poll();
  }
}

void RunSupervisor::Poll() {
  MutexLock pass(&poll_mu_);
  children_->Reap();
  const double now = SystemClock()->WallNow();
  auto found = store_->ListRunsToStart(now, options_.auto_resume, kBatch);
  if (!found.ok()) return;
  // Runs already started come before queued ones.
  std::stable_partition(found->begin(), found->end(),
                        [](const Store::StartCandidate& c) { return c.reason != "queued"; });
  for (const Store::StartCandidate& c : *found) {
    const RunRecord& run = c.run;
    if (launcher_->Launched(run.id) || launcher_->GaveBack(run.id, run.epoch)) continue;
    // Alive: running, or being started by a server (this one or another).
    if (OwnerAlive(run.owner, now - run.heartbeat)) continue;
    EventRecord event;
    if (c.reason == "interrupted" || c.reason == "running") {
      const double last_sign = std::max(run.heartbeat, run.updated_at);
      if (now - last_sign < options_.resume_grace_s) continue;
      const std::string reason = c.reason == "running" ? "owner_died" : "interrupted";
      if (c.auto_resumes >= options_.max_resumes) {
        if (!c.limit_noted) {
          (void)store_->AppendEventOnce(
              {run.id, 0, now, "", "auto_resume_limit",
               EventData()
                   .Add("auto_resumes", c.auto_resumes)
                   .Add("max_resumes", options_.max_resumes)
                   .Add("reason", reason)
                   .Done()});
        }
        continue;
      }
      event.kind = "auto_resumed";
      event.data_json =
          EventData().Add("count", c.auto_resumes + 1).Add("reason", reason).Done();
    }
    if (!children_->Reserve()) break;
    // A refusal means another process decided first; the next pass sees it.
    (void)launcher_->Start(run, event, {});
  }
}

}  // namespace keel::service
