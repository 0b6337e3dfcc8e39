#pragma once
// BreakerRegistry: where the executor asks circuit breakers for permission
// and reports outcomes. With a Store, every decision is one read-modify-write
// transaction on the shared breaker row, so all runs and processes on the
// same database feed and obey the same breaker; without one (or when the
// store fails), state lives in this process.
//
// A probe let through in HALF_OPEN holds a lease (ProbeLease) that the
// registry renews every `renew_every` seconds while the probe runs, until
// Record or Release; other processes free the slot when its owner is dead
// (OwnerAlive) or the lease went `lease` seconds without renewal.
// Thread-safe. Destroying it stops the renewals of probes still out.

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <unordered_map>

#include "engine/circuit_breaker.h"
#include "engine/clock.h"
#include "engine/mutex.h"
#include "engine/process_owner.h"
#include "engine/store.h"

namespace keel {

class BreakerRegistry {
 public:
  struct Options {
    double lease = 30;       // seconds a probe's slot outlives its last renewal
    double renew_every = 5;  // seconds between renewals; well below `lease`
    Owner owner;             // this process; pid 0: CurrentOwner()
    // Whether a lease's owner may still run it; null: OwnerAlive.
    std::function<bool(const ProbeLease& lease, double now)> alive;
  };

  // `store` may be null; it must outlive the registry.
  explicit BreakerRegistry(Store* store) : BreakerRegistry(store, Options()) {}
  BreakerRegistry(Store* store, Options options);
  // Stops every renewal still scheduled.
  ~BreakerRegistry();

  BreakerRegistry(const BreakerRegistry&) = delete;
  BreakerRegistry& operator=(const BreakerRegistry&) = delete;

  // How a probe's lease is renewed while it runs: `clock` fires the
  // renewals; `post`, when set, runs each store write elsewhere than on the
  // clock's timer thread (which must not block). Both must stay usable until
  // the probe's Record or Release returns.
  struct Renewer {
    Clock* clock = nullptr;  // null: the lease is not renewed
    std::function<void(std::function<void()>)> post;
  };

  struct Decision {
    Admission admission = Admission::kAllowed;
    double retry_in = 0;  // kRejected: seconds until a probe may go
    BreakerTransition transition = BreakerTransition::kNone;
    int64_t probe = 0;  // kProbe: the probe's id, for Record or Release
    BreakerState state = BreakerState::kClosed;  // after the decision
    double share = 1;   // the share a recovering breaker admits
    int reopens = 0;    // Reopens() after the decision
  };
  Decision Admit(const BreakerConfig& config, double now, const Renewer& renewer);
  // Without renewals: a probe keeps its slot for `lease` seconds at most.
  Decision Admit(const BreakerConfig& config, double now) { return Admit(config, now, Renewer{}); }
  // Records an admitted call's outcome; `probe` is Decision::probe (0 when
  // it was no probe). Stops the probe's renewals first.
  // *reopens, when given, is set to Reopens() after the outcome.
  BreakerTransition Record(const BreakerConfig& config, const CallOutcome& outcome, int64_t probe,
                           double now, int* reopens = nullptr);
  // A probe is named by its id, not a flag.
  template <typename Flag, typename = std::enable_if_t<std::is_same_v<Flag, bool>>>
  BreakerTransition Record(const BreakerConfig& config, const CallOutcome& outcome, Flag probe,
                           double now) = delete;
  // Frees probe `probe`'s slot without an outcome (its call was abandoned).
  void Release(const BreakerConfig& config, int64_t probe);

  // Probes admitted with a Renewer that have not reported or been released.
  size_t renewing();

 private:
  // The renewals of one outstanding probe. Record/Release and the renewal
  // itself synchronize on mu, which a renewal holds while it writes, so once
  // StopRenewal returns no renewal of the probe runs or is about to.
  struct Renewal {
    std::string key;
    int64_t id = 0;
    Clock* clock = nullptr;
    std::function<void(std::function<void()>)> post;
    Mutex mu;
    bool stopped GUARDED_BY(mu) = false;
    TimerId timer GUARDED_BY(mu) = 0;
  };

  template <typename F>
  void Update(const std::string& key, F&& update);
  ProbeClaim Claim(int64_t id);
  void Schedule(const std::shared_ptr<Renewal>& r) EXCLUSIVE_LOCKS_REQUIRED(r->mu);
  void Renew(const std::shared_ptr<Renewal>& r) EXCLUSIVE_LOCKS_REQUIRED(r->mu);
  void StopRenewal(int64_t probe);

  Store* store_;
  const Options options_;
  Mutex mu_;
  std::unordered_map<std::string, BreakerSnapshot> local_ GUARDED_BY(mu_);
  std::unordered_map<int64_t, std::shared_ptr<Renewal>> renewals_ GUARDED_BY(mu_);
  std::mt19937_64 ids_ GUARDED_BY(mu_);
};

}  // namespace keel
