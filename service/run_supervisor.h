#pragma once
// RunSupervisor: the dispatcher and the supervisor of `keel serve` — one
// background thread that, every half second (or at once when woken), reaps
// ended children and starts what may start, while --max-runs slots are
// free:
//  - waiting runs whose signal has arrived (from the API or `keel signal` in
//    any process) or whose durable timer is due;
//  - with --auto-resume, interrupted runs and runs whose owner died, once
//    --resume-grace has passed since their last sign of life, at most
//    --max-resumes times each (each recorded as an `auto_resumed` event
//    with the count and the reason; a run past the limit gets one
//    `auto_resume_limit` event and is left alone);
//  - queued runs, oldest first.
// Queued runs stay in the database until a slot frees, so they survive a
// restart. Every start goes through RunLauncher's fenced hand-off, so two
// servers on one database never start or resume the same run.
//
// Thread-safety: Start/Stop from the service's main thread; Wake and Poll
// from any thread (Poll runs one pass, serialized by a mutex).

#include <thread>

#include "engine/mutex.h"
#include "engine/store.h"
#include "service/child_runs.h"
#include "service/component.h"
#include "service/run_launcher.h"
#include "service/service_options.h"

namespace keel::service {

class RunSupervisor : public Component {
 public:
  // All must outlive the supervisor.
  RunSupervisor(const ServiceOptions& options, Store* store, ChildRuns* children,
                RunLauncher* launcher);
  ~RunSupervisor() override;

  void Start() override;
  void Stop() override;

  // Asks for a pass now (a run was queued, a child may have ended).
  void Wake();
  // One pass: reaps children, then starts what may start. Errors reading the
  // database are left for the next pass.
  void Poll();

 private:
  void Loop();

  const ServiceOptions& options_;
  Store* const store_;
  ChildRuns* const children_;
  RunLauncher* const launcher_;
  Mutex poll_mu_;  // one pass at a time
  Mutex mu_;
  CondVar cv_;
  bool stop_ GUARDED_BY(mu_) = false;
  bool woken_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace keel::service
