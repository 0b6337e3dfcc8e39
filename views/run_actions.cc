#include "views/run_actions.h"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

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

Result<int64_t> ResetBreakerKeys(Store& store, const std::string& key) {
  auto reset = store.ResetBreakers(key);
  if (!reset.ok()) return reset.status();
  if (!key.empty() && *reset == 0) {
    return Status::Error(ErrorKind::kPermanent, "no breaker '" + key + "'");
  }
  return reset;
}

}  // namespace keel
