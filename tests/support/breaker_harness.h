#pragma once
// A breaker snapshot driven by hand for the state machine's tests: a
// configuration, a clock that only moves when a test moves it, and probe
// claims whose owners a test may declare dead. One thread.

#include <set>

#include "engine/circuit_breaker.h"

namespace keel {

struct Harness {
  BreakerConfig config;
  BreakerSnapshot snap;
  double now = 1000;
  BreakerTransition last = BreakerTransition::kNone;
  int64_t next_id = 1;
  double lease = 30;
  std::set<int64_t> dead;  // probes whose owner is gone

  ProbeClaim Claim() {
    ProbeClaim c;
    c.id = next_id++;
    c.owner = Owner{c.id, "here", 1};  // one process per probe
    c.lease = lease;
    c.alive = [this](const ProbeLease& p, double) { return dead.count(p.id) == 0; };
    return c;
  }
  // One call at `now` that ends as `outcome` when admitted.
  Admission Call(const CallOutcome& outcome) {
    double retry_in;
    BreakerTransition t;
    ProbeClaim claim = Claim();
    Admission a = Admit(snap, config, now, claim, &retry_in, &t);
    if (t != BreakerTransition::kNone) last = t;
    if (a != Admission::kRejected) {
      t = RecordOutcome(snap, config, outcome, a == Admission::kProbe ? claim.id : 0, now);
      if (t != BreakerTransition::kNone) last = t;
    }
    return a;
  }
  // Asks without reporting; *id is the probe's id on kProbe.
  Admission Peek(double* retry_in, int64_t* id = nullptr) {
    BreakerTransition t;
    ProbeClaim claim = Claim();
    Admission a = Admit(snap, config, now, claim, retry_in, &t);
    if (id) *id = a == Admission::kProbe ? claim.id : 0;
    return a;
  }
};


}  // namespace keel
