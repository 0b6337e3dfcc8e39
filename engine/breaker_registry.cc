#include "engine/breaker_registry.h"

namespace keel {

template <typename F>
void BreakerRegistry::Update(const std::string& key, F&& update) {
  if (store_) {
    auto stored = store_->UpdateBreaker(key, update);
    if (stored.ok()) return;
  }
  // No store, or it failed: the breaker still protects this process.
  std::lock_guard<std::mutex> lock(mu_);
  update(local_[key]);
}

BreakerRegistry::Decision BreakerRegistry::Admit(const BreakerConfig& config, double now) {
  Decision d;
  Update(config.key, [&](BreakerSnapshot& s) {
    d.admission = keel::Admit(s, config, now, &d.retry_in, &d.transition);
  });
  return d;
}

BreakerTransition BreakerRegistry::Record(const BreakerConfig& config, bool success, bool probe,
                                          double now) {
  BreakerTransition t = BreakerTransition::kNone;
  Update(config.key,
         [&](BreakerSnapshot& s) { t = RecordOutcome(s, config, success, probe, now); });
  return t;
}

}  // namespace keel
