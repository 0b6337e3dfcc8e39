#include "service/scheduler.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <system_error>

#include "service/command_output.h"
#include "service/tick_plan.h"
#include "views/format.h"

namespace keel::service {
namespace {

namespace fs = std::filesystem;

// The .lua files under `dir` with their sizes and modification times.
std::string StampFiles(const std::string& dir) {
  std::string stamp;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().extension() != ".lua") continue;
    std::error_code entry_ec;
    auto size = fs::file_size(it->path(), entry_ec);
    auto time = fs::last_write_time(it->path(), entry_ec);
    stamp += it->path().string() + '\t' + std::to_string(size) + '\t' +
             std::to_string(time.time_since_epoch().count()) + '\n';
  }
  return stamp;
}

Result<ScheduleListingSet> RunKeelSchedules(const SchedulerOptions& options,
                                            const std::atomic<bool>* stopping) {
  auto output =
      RunForOutput({options.keel_path, "schedules", "--workflows", options.workflows, "--json"},
                   options.discover_timeout_s, stopping);
  if (!output.ok()) return output.status();
  auto listing = ParseScheduleListingJson(output->out);
  if (!listing.ok()) {
    std::string err = output->err.substr(0, output->err.find('\n'));
    return Status::Error(ErrorKind::kPermanent,
                         "`keel schedules` exited " + std::to_string(output->exit_code) + ": " +
                             (err.empty() ? listing.status().message() : err));
  }
  return listing;
}

std::string TickText(int64_t tick) { return FormatIsoUtc(static_cast<double>(tick)); }

}  // namespace

Scheduler::Scheduler(SchedulerOptions options, Store* store, Clock* clock)
    : options_(std::move(options)),
      store_(store),
      clock_(clock),
      shared_(std::make_shared<Shared>()),
      stopping_(std::make_shared<std::atomic<bool>>(false)) {
  if (!options_.discover) {
    options_.discover = [opts = options_, stopping = stopping_] {
      return RunKeelSchedules(opts, stopping.get());
    };
  }
  if (!options_.stamp) {
    options_.stamp = [dir = options_.workflows] { return StampFiles(dir); };
  }
}

Scheduler::Scheduler(const ServiceOptions& options, Store& store)
    : Scheduler(
          [&] {
            SchedulerOptions o;
            o.workflows = options.workflows;
            o.keel_path = options.keel_path;
            return o;
          }(),
          &store, SystemClock()) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void Scheduler::Stop() {
  stopping_->store(true);
  {
    MutexLock lock(&shared_->mu);
    shared_->stop = true;
    if (shared_->timer != 0) clock_->Cancel(shared_->timer);
    shared_->timer = 0;
  }
  shared_->cv.SignalAll();
  if (thread_.joinable()) thread_.join();
}

bool Scheduler::WaitForPass(double t, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            std::chrono::duration<double>(timeout_s));
  MutexLock lock(&shared_->mu);
  while (shared_->last_pass_began < t) {
    if (!shared_->cv.WaitUntil(&shared_->mu, deadline) &&
        std::chrono::steady_clock::now() >= deadline) {
      return shared_->last_pass_began >= t;
    }
  }
  return true;
}

void Scheduler::Loop() {
  for (;;) {
    {
      MutexLock lock(&shared_->mu);
      if (shared_->stop) return;
      shared_->wake = false;
    }
    const double began = clock_->Now();
    double wait = Pass();
    std::shared_ptr<Shared> shared = shared_;
    MutexLock lock(&shared_->mu);
    shared_->last_pass_began = began;
    shared_->cv.SignalAll();
    if (shared_->stop) return;
    shared_->timer = clock_->After(wait, [shared] {
      {
        MutexLock inner(&shared->mu);
        shared->wake = true;
        shared->timer = 0;
      }
      shared->cv.SignalAll();
    });
    while (!shared_->wake && !shared_->stop) shared_->cv.Wait(&shared_->mu);
  }
}

double Scheduler::Pass() {
  const double mono = clock_->Now();
  if (!discovered_ || mono >= next_discovery_) {
    Discover(mono);
  } else {
    std::string stamp = options_.stamp();
    if (stamp != stamp_) Discover(mono);
  }
  const int64_t now = static_cast<int64_t>(std::floor(clock_->WallNow()));
  if (!known_.empty()) {
    auto last = store_->LastScheduleTicks();
    if (!last.ok()) {
      Log("cannot read the schedule ticks: " + last.status().message());
    } else {
      std::map<std::string, int64_t> last_tick;
      for (const Store::ScheduleTick& t : *last) last_tick[t.key] = t.tick;
      for (const auto& [key, known] : known_) {
        if (!known.rule) continue;
        auto found = last_tick.find(key);
        StartTicks(known, found != last_tick.end() ? found->second : known.first_seen, now);
      }
    }
  }
  // Sleep until the next tick, or the next look at the files.
  double wait = options_.poll_s;
  const double wall = clock_->WallNow();
  const int64_t after = static_cast<int64_t>(std::floor(wall));
  for (const auto& [key, known] : known_) {
    if (known.rule) wait = std::min(wait, static_cast<double>(known.rule->Next(after)) - wall);
  }
  return std::max(wait, 0.001);
}

void Scheduler::Discover(double mono_now) {
  stamp_ = options_.stamp();
  auto listing = options_.discover();
  discovered_ = true;
  next_discovery_ = mono_now + options_.rediscover_s;
  if (!listing.ok()) {
    Log("discovering schedules failed (keeping the " + std::to_string(known_.size()) +
        " known): " + listing.status().message());
    return;
  }
  const int64_t now = static_cast<int64_t>(std::floor(clock_->WallNow()));
  std::map<std::string, Known> next;
  for (ScheduleListing& s : listing->schedules) {
    Known& k = next[s.key];
    auto old = known_.find(s.key);
    k.first_seen = old != known_.end() ? old->second.first_seen : now;
    auto rule = s.cron.empty() ? ScheduleRule::Every(s.every) : ScheduleRule::Cron(s.cron);
    if (rule.ok()) {
      k.rule = std::move(rule).value();
    } else {
      Log("schedule " + s.key + ": " + rule.status().message());
    }
    if (old == known_.end()) {
      Log("schedule " + s.key + ": " +
          (s.cron.empty() ? "every " + std::to_string(s.every) + "s" : "cron " + s.cron) +
          ", workflow '" + s.workflow + "', next tick " + TickText(s.next_tick));
    }
    k.listing = std::move(s);
  }
  for (const auto& [key, known] : known_) {
    if (next.count(key) == 0) Log("schedule " + key + ": gone");
  }
  known_ = std::move(next);
  std::set<std::string> errors;
  for (const ScheduleFileError& e : listing->errors) {
    std::string line = e.file + ": " + e.error;
    if (logged_errors_.count(line) == 0) Log("not loaded: " + line);
    errors.insert(line);
  }
  logged_errors_ = std::move(errors);
}

void Scheduler::StartTicks(const Known& known, int64_t from, int64_t now) {
  const ScheduleListing& s = known.listing;
  TickPlan plan = PlanTicks(*known.rule, from, now, static_cast<int64_t>(options_.catch_up_s),
                            options_.max_catch_up);
  if (plan.skipped > 0) {
    Log("schedule " + s.key + ": skipped " + std::to_string(plan.skipped) + " missed tick" +
        (plan.skipped == 1 ? "" : "s") + " from " + TickText(plan.first_skipped) + " to " +
        TickText(plan.last_skipped) + " (older than the catch-up window of " +
        FormatDuration(options_.catch_up_s) + ", or beyond " +
        std::to_string(options_.max_catch_up) + " per pass)");
  }
  for (int64_t tick : plan.start) {
    const double wall = clock_->WallNow();
    RunRecord run;
    run.workflow = s.workflow;
    run.script_path = s.script_path;
    run.script_sha256 = s.script_sha256;
    run.script_text = s.script_text;
    run.params_json = s.params_json;
    run.status = RunStatus::kQueued;
    run.created_at = run.updated_at = wall;
    run.node_count = s.node_count;
    run.config_json = "{}";
    Result<Store::TickOutcome> outcome = Store::TickOutcome::kRunIdTaken;
    for (int attempt = 0;
         attempt < 8 && outcome.ok() && *outcome == Store::TickOutcome::kRunIdTaken; ++attempt) {
      run.id = NewRunId(wall);
      outcome = store_->RecordScheduleTick(s.key, tick, run);
    }
    if (!outcome.ok()) {
      Log("schedule " + s.key + ": tick " + TickText(tick) +
          " not started (tried again on the next pass): " + outcome.status().message());
      return;
    }
    if (*outcome == Store::TickOutcome::kCreated) {
      Log("schedule " + s.key + ": tick " + TickText(tick) + " queued run " + run.id);
    }
  }
}

std::string Scheduler::NewRunId(double wall) {
  std::time_t t = static_cast<std::time_t>(wall);
  std::tm tm{};
  localtime_r(&t, &tm);  // as `keel run` names its runs
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%y%m%d-%H%M%S", &tm);
  static thread_local std::mt19937 rng{std::random_device{}()};
  char id[48];
  std::snprintf(id, sizeof id, "%s-%04x", stamp, static_cast<unsigned>(rng() & 0xffff));
  return id;
}

void Scheduler::Log(const std::string& line) {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "keel serve: scheduler: %s\n", line.c_str());
  }
}

}  // namespace keel::service
