#include "engine/breaker_registry.h"

#include <utility>
#include <vector>

namespace keel {

namespace {

BreakerRegistry::Options WithOwner(BreakerRegistry::Options options) {
  if (options.owner.pid == 0) options.owner = CurrentOwner();
  return options;
}

}  // namespace

BreakerRegistry::BreakerRegistry(Store* store, Options options)
    : store_(store), options_(WithOwner(std::move(options))), ids_(std::random_device()()) {}

BreakerRegistry::~BreakerRegistry() {
  std::unordered_map<int64_t, std::shared_ptr<Renewal>> renewals;
  {
    MutexLock lock(&mu_);
    renewals.swap(renewals_);
  }
  for (auto& [id, r] : renewals) {
    MutexLock lock(&r->mu);
    r->stopped = true;
    r->clock->Cancel(r->timer);
  }
}

template <typename F>
void BreakerRegistry::Update(const std::string& key, F&& update) {
  if (store_) {
    auto stored = store_->UpdateBreaker(key, update);
    if (stored.ok()) return;
  }
  // No store, or it failed: the breaker still protects this process.
  MutexLock lock(&mu_);
  update(local_[key]);
}

ProbeClaim BreakerRegistry::Claim(int64_t id) {
  ProbeClaim claim;
  claim.id = id;
  claim.owner = options_.owner;
  claim.lease = options_.lease;
  claim.alive = options_.alive;
  if (!claim.alive) {
    double stale_after = options_.lease;
    claim.alive = [stale_after](const ProbeLease& lease, double now) {
      return OwnerAlive(lease.owner, now - lease.renewed_at, stale_after);
    };
  }
  return claim;
}

BreakerRegistry::Decision BreakerRegistry::Admit(const BreakerConfig& config, double now,
                                                 const Renewer& renewer) {
  int64_t id = 0;
  {
    MutexLock lock(&mu_);
    while (id == 0) id = static_cast<int64_t>(ids_() >> 1);
  }
  const ProbeClaim claim = Claim(id);
  Decision d;
  Update(config.key, [&](BreakerSnapshot& s) {
    d.admission = keel::Admit(s, config, now, claim, &d.retry_in, &d.transition);
    d.state = s.state;
    d.reopens = Reopens(s);
    if (s.state == BreakerState::kRecovering) d.share = RampShare(s, config, now);
  });
  if (d.admission != Admission::kProbe) return d;
  d.probe = id;
  if (renewer.clock == nullptr) return d;
  auto r = std::make_shared<Renewal>();
  r->key = config.key;
  r->id = id;
  r->clock = renewer.clock;
  r->post = renewer.post;
  {
    MutexLock lock(&mu_);
    renewals_[id] = r;
  }
  MutexLock lock(&r->mu);
  Schedule(r);
  return d;
}

// The renewal must not be stopped.
void BreakerRegistry::Schedule(const std::shared_ptr<Renewal>& r) {
  std::weak_ptr<Renewal> weak = r;
  r->timer = r->clock->After(options_.renew_every, [this, weak] {
    auto due = weak.lock();
    if (!due) return;
    MutexLock lock(&due->mu);
    // Stopped: the probe reported, or the registry is gone; `this` is not
    // touched then.
    if (due->stopped) return;
    if (!due->post) {
      Renew(due);
      return;
    }
    // Posted under mu, so the probe cannot report (and its caller's `post`
    // go away) before the write is queued there.
    due->post([this, weak] {
      auto posted = weak.lock();
      if (!posted) return;
      MutexLock posted_lock(&posted->mu);
      if (!posted->stopped) Renew(posted);
    });
  });
}

// The renewal must not be stopped.
void BreakerRegistry::Renew(const std::shared_ptr<Renewal>& r) {
  bool held = false;
  auto renew = [&](BreakerSnapshot& s) { held = RenewProbe(s, r->id, r->clock->WallNow()); };
  bool stored = false;
  if (store_) stored = store_->UpdateBreaker(r->key, renew).ok();
  if (!stored) {
    MutexLock lock(&mu_);
    auto it = local_.find(r->key);
    if (it != local_.end()) renew(it->second);
    // A store that failed this once keeps the lease it had: try again next
    // time rather than let the lease lapse while the probe still runs.
    if (store_) held = true;
  }
  if (held) {
    Schedule(r);
  } else {
    r->stopped = true;  // the slot is gone (freed, reset, re-opened): nothing to renew
  }
}

void BreakerRegistry::StopRenewal(int64_t probe) {
  std::shared_ptr<Renewal> r;
  {
    MutexLock lock(&mu_);
    auto it = renewals_.find(probe);
    if (it == renewals_.end()) return;
    r = std::move(it->second);
    renewals_.erase(it);
  }
  MutexLock lock(&r->mu);
  r->stopped = true;
  r->clock->Cancel(r->timer);
}

BreakerTransition BreakerRegistry::Record(const BreakerConfig& config, const CallOutcome& outcome,
                                          int64_t probe, double now, int* reopens) {
  if (probe != 0) StopRenewal(probe);
  BreakerTransition t = BreakerTransition::kNone;
  Update(config.key, [&](BreakerSnapshot& s) {
    t = RecordOutcome(s, config, outcome, probe, now);
    if (reopens) *reopens = Reopens(s);
  });
  return t;
}

void BreakerRegistry::Release(const BreakerConfig& config, int64_t probe) {
  if (probe == 0) return;
  StopRenewal(probe);
  Update(config.key, [&](BreakerSnapshot& s) { ReleaseProbe(s, probe); });
}

size_t BreakerRegistry::renewing() {
  MutexLock lock(&mu_);
  return renewals_.size();
}

}  // namespace keel
