#pragma once
// Scheduler: the part of `keel serve` that starts the workflows files under
// --workflows declare with keel.schedule, one queued run per tick.
//
// It discovers schedules by running `keel schedules --workflows DIR --json`
// as a child process (the service loads no Lua): at start, whenever a .lua
// file under DIR changes (it looks every `poll_s`), and at least every
// `rediscover_s`. For each schedule it starts every tick that came due since
// the last one recorded in the database (or, for a schedule it has never
// started, since this process first saw it), oldest first: each tick is
// recorded with its run in one transaction (Store::RecordScheduleTick), so
// a restart or another server on the same database never starts a tick
// twice. Ticks older than `catch_up_s` are skipped, and so are all but the
// newest `max_catch_up`, with a log line saying which. It sleeps on a Clock
// timer until the next tick is due (or the next look at the files).
//
// The runs it creates are queued (RunStatus::kQueued: no owner, no nodes);
// another component starts them.
//
// Thread-safety: Start and Stop are called from the service's main thread.
// Passes run on the scheduler's own thread; WaitForPass may be called from
// any thread. The Clock's timer callback only wakes that thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "engine/clock.h"
#include "engine/cron_schedule.h"
#include "engine/mutex.h"
#include "engine/store.h"
#include "service/component.h"
#include "service/service_options.h"
#include "views/schedule_listing.h"

namespace keel::service {

struct SchedulerOptions {
  std::string workflows;  // the directory searched (absolute)
  std::string keel_path;  // the keel executable run for discovery
  double catch_up_s = 3600;
  int max_catch_up = 100;  // per schedule and pass
  double poll_s = 2;       // how often the files under `workflows` are looked at
  double rediscover_s = 60;
  double discover_timeout_s = 60;
  // Where log lines go; null: stderr, prefixed "keel serve: scheduler: ".
  std::function<void(const std::string&)> log;
  // How schedules are discovered; null: run `keel schedules` (above).
  std::function<Result<ScheduleListingSet>()> discover;
  // Something that changes when the schedule files change; null: the paths,
  // sizes and modification times of the .lua files under `workflows`.
  std::function<std::string()> stamp;
};

class Scheduler final : public Component {
 public:
  // `store` and `clock` must outlive the scheduler.
  Scheduler(SchedulerOptions options, Store* store, Clock* clock);
  // The scheduler of `keel serve` configured by `options`, on the system clock.
  Scheduler(const ServiceOptions& options, Store& store);
  ~Scheduler() override;

  void Start() override;
  void Stop() override;

  // Waits until a pass that began at or after Clock::Now() `t` has finished,
  // or `timeout_s` real seconds went by. Returns whether it did. For tests.
  bool WaitForPass(double t, double timeout_s);

 private:
  struct Known {
    ScheduleListing listing;
    std::optional<ScheduleRule> rule;
    int64_t first_seen = 0;  // wall seconds
  };

  void Loop();
  // One pass: discovers when due, starts due ticks; returns seconds until
  // the next pass is due.
  double Pass();
  void Discover(double mono_now);
  void StartTicks(const Known& known, int64_t from, int64_t now);
  std::string NewRunId(double wall);
  void Log(const std::string& line);

  SchedulerOptions options_;
  Store* const store_;
  Clock* const clock_;

  // Owned by the scheduler's thread.
  std::map<std::string, Known> known_;
  std::set<std::string> logged_errors_;  // file errors already logged
  std::string stamp_;
  double next_discovery_ = 0;  // Clock::Now() seconds
  bool discovered_ = false;

  // What the timer callback and the scheduler's thread share; the callback
  // holds it too, so one that fires during shutdown touches nothing freed.
  struct Shared {
    Mutex mu;
    CondVar cv;
    bool wake GUARDED_BY(mu) = false;
    bool stop GUARDED_BY(mu) = false;
    TimerId timer GUARDED_BY(mu) = 0;
    double last_pass_began GUARDED_BY(mu) = -1;  // Clock::Now() when the last finished pass began
  };
  std::shared_ptr<Shared> shared_;
  // Set by Stop: a discovery in progress kills its child and returns.
  std::shared_ptr<std::atomic<bool>> stopping_;
  std::thread thread_;
};

}  // namespace keel::service
