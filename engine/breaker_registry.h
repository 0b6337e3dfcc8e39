#pragma once
// BreakerRegistry: where the executor asks circuit breakers for permission
// and reports outcomes. With a Store, every decision is one read-modify-write
// transaction on the shared breaker row, so all runs and processes on the
// same database feed and obey the same breaker; without one (or when the
// store fails), state lives in this process. Thread-safe.

#include <mutex>
#include <string>
#include <unordered_map>

#include "engine/circuit_breaker.h"
#include "engine/store.h"

namespace keel {

class BreakerRegistry {
 public:
  // `store` may be null; it must outlive the registry.
  explicit BreakerRegistry(Store* store) : store_(store) {}

  struct Decision {
    Admission admission = Admission::kAllowed;
    double retry_in = 0;  // kRejected: seconds until a probe may go
    BreakerTransition transition = BreakerTransition::kNone;
  };
  Decision Admit(const BreakerConfig& config, double now);
  BreakerTransition Record(const BreakerConfig& config, bool success, bool probe, double now);

 private:
  template <typename F>
  void Update(const std::string& key, F&& update);

  Store* store_;
  std::mutex mu_;
  std::unordered_map<std::string, BreakerSnapshot> local_;  // guarded by mu_
};

}  // namespace keel
