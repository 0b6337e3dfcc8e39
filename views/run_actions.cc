#include "views/run_actions.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>

#include "engine/did_you_mean.h"
#include "engine/process_owner.h"
#include "views/run_status.h"

namespace keel {

Result<CancelDecision> CancelRunNow(Store& store, const std::string& id, double now) {
  auto run = store.GetRun(id);
  if (!run.ok()) return run.status();
  CancelDecision decision{.run = *run, .was = RunStatusLabel(*run, now),
                          .outcome = CancelOutcome::kCancelled};
  auto outcome = store.CancelRun(run->id, now, [](const Owner& owner, double heartbeat_age) {
    return OwnerAlive(owner, heartbeat_age);
  });
  if (!outcome.ok()) return outcome.status();
  decision.outcome = *outcome;
  return decision;
}

Status CheckSignalData(const std::string& data) {
  rapidjson::Document doc;
  doc.Parse(data.c_str(), data.size());
  if (!doc.HasParseError()) return Status::Ok();
  return Status::Error(ErrorKind::kPermanent,
                       std::string("not valid JSON: ") +
                           rapidjson::GetParseError_En(doc.GetParseError()) + " (at byte " +
                           std::to_string(doc.GetErrorOffset()) + ")");
}

Result<RunRecord> SendRunSignal(Store& store, const std::string& id, const std::string& name,
                                const std::string& data, double now) {
  if (name.empty()) {
    return Status::Error(ErrorKind::kPermanent, "the signal's name may not be empty");
  }
  Status valid = CheckSignalData(data);
  if (!valid.ok()) return valid;
  auto run = store.GetRun(id);
  if (!run.ok()) return run.status();
  Status sent = store.SendSignal(run->id, name, data, now);
  if (!sent.ok()) return sent;
  return run;
}

namespace {

constexpr std::string_view kNoBreaker = "no breaker '";

// "no breaker 'KEY'", with a did-you-mean among `rows`.
Status UnknownBreaker(const std::string& key, const std::vector<BreakerRow>& rows) {
  std::vector<std::string> keys;
  keys.reserve(rows.size());
  for (const BreakerRow& row : rows) keys.push_back(row.key);
  return Status::Error(ErrorKind::kPermanent,
                       std::string(kNoBreaker) + key + "'" + DidYouMean(key, keys));
}

}  // namespace

bool IsUnknownBreaker(const Status& status) {
  return status.kind() == ErrorKind::kPermanent && status.message().starts_with(kNoBreaker);
}

Result<int64_t> ResetBreakerKeys(Store& store, const std::string& key) {
  auto reset = store.ResetBreakers(key);
  if (!reset.ok()) return reset.status();
  if (!key.empty() && *reset == 0) {
    auto rows = store.ListBreakers();
    return UnknownBreaker(key, rows.ok() ? *rows : std::vector<BreakerRow>{});
  }
  return reset;
}

Result<BreakerOrder> OperateBreaker(Store& store, const std::string& key, BreakerState target,
                                    double now) {
  if (target != BreakerState::kForcedOpen && target != BreakerState::kDisabled &&
      target != BreakerState::kClosed) {
    return Status::Error(ErrorKind::kPermanent, "an operator may not put a breaker in state " +
                                                    std::string(BreakerStateName(target)));
  }
  // UpdateBreaker creates a missing row, so the key is checked first.
  auto rows = store.ListBreakers();
  if (!rows.ok()) return rows.status();
  bool known = std::any_of(rows->begin(), rows->end(),
                           [&](const BreakerRow& row) { return row.key == key; });
  if (!known) return UnknownBreaker(key, *rows);
  BreakerOrder order;
  auto updated = store.UpdateBreaker(key, [&](BreakerSnapshot& s) {
    // Set on each try: the update may run again when its transaction is retried.
    order.was = s.state;
    order.transition = SetOperatorState(s, target, now);
  });
  if (!updated.ok()) return updated.status();
  order.now = std::move(*updated);
  return order;
}

}  // namespace keel
