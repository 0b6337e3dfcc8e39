#include "cli/claim_store.h"

#include <unordered_map>

namespace keel::cli {
namespace {

Status NotHere(const char* what) {
  return Status::Error(ErrorKind::kPermanent,
                       std::string(what) + ": not available to a node run by a worker");
}

}  // namespace

void ClaimStore::Fail(const std::string& why) {
  MutexLock lock(&mu_);
  if (failed_.empty()) failed_ = why;
}

Status ClaimStore::WriteHealth() {
  MutexLock lock(&mu_);
  if (failed_.empty()) return Status::Ok();
  return Status::Error(ErrorKind::kPermanent, failed_);
}

std::vector<NodeRecord> ClaimStore::TakeRecords() {
  MutexLock lock(&mu_);
  std::vector<NodeRecord> out;
  std::unordered_map<std::string, size_t> at;
  for (NodeRecord& rec : records_) {
    auto [it, fresh] = at.emplace(rec.node, out.size());
    if (fresh) {
      out.push_back(std::move(rec));
    } else {
      out[it->second] = std::move(rec);
    }
  }
  records_.clear();
  return out;
}

std::vector<EventRecord> ClaimStore::TakeEvents() {
  MutexLock lock(&mu_);
  std::vector<EventRecord> out;
  out.swap(events_);
  return out;
}

void ClaimStore::SaveNode(NodeRecord node) {
  MutexLock lock(&mu_);
  records_.push_back(std::move(node));
}

void ClaimStore::FinishNode(NodeRecord node, EventRecord event) {
  MutexLock lock(&mu_);
  records_.push_back(std::move(node));
  events_.push_back(std::move(event));
}

void ClaimStore::AppendEvent(EventRecord event) {
  MutexLock lock(&mu_);
  events_.push_back(std::move(event));
}

Status ClaimStore::CreateRun(const RunRecord&) { return NotHere("CreateRun"); }
Result<ClaimedRun> ClaimStore::ClaimRun(const RunRecord&, int64_t,
                                        const std::function<bool(const Owner&, double)>&) {
  return NotHere("ClaimRun");
}
Result<ClaimedRun> ClaimStore::ClaimRunForRerun(const RunRecord&, int64_t, const std::string&,
                                                const std::vector<std::string>&,
                                                const std::function<bool(const Owner&, double)>&) {
  return NotHere("ClaimRunForRerun");
}
Status ClaimStore::CreateForkedRun(const RunRecord&, const std::vector<NodeRecord>&) {
  return NotHere("CreateForkedRun");
}
Result<RunRecord> ClaimStore::GetRun(const std::string& id) {
  return shared_ ? shared_->GetRun(id) : Result<RunRecord>(NotHere("GetRun"));
}
Result<std::vector<NodeRecord>> ClaimStore::GetNodes(const std::string& run_id) {
  return shared_ ? shared_->GetNodes(run_id) : Result<std::vector<NodeRecord>>(NotHere("GetNodes"));
}
Result<std::vector<EventRecord>> ClaimStore::GetEvents(const std::string& run_id) {
  return shared_ ? shared_->GetEvents(run_id)
                 : Result<std::vector<EventRecord>>(NotHere("GetEvents"));
}
Result<std::vector<RunListing>> ClaimStore::ListRuns(const RunFilter&) {
  return NotHere("ListRuns");
}
Result<std::vector<ScriptVersion>> ClaimStore::GetScriptVersions(const std::string&) {
  return NotHere("GetScriptVersions");
}
Result<int64_t> ClaimStore::DeleteFinishedBefore(double) { return NotHere("DeleteFinishedBefore"); }
Result<BreakerSnapshot> ClaimStore::UpdateBreaker(
    const std::string& key, const std::function<void(BreakerSnapshot&)>& update) {
  return shared_ ? shared_->UpdateBreaker(key, update)
                 : Result<BreakerSnapshot>(NotHere("UpdateBreaker"));
}
Result<std::vector<BreakerRow>> ClaimStore::ListBreakers() {
  return shared_ ? shared_->ListBreakers() : Result<std::vector<BreakerRow>>(NotHere("ListBreakers"));
}
Status ClaimStore::SendSignal(const std::string&, const std::string&, const std::string&, double) {
  return NotHere("SendSignal");
}
Result<std::optional<std::string>> ClaimStore::TakeSignal(const std::string& run_id,
                                                          const std::string& name,
                                                          const std::string& node, double now) {
  return shared_ ? shared_->TakeSignal(run_id, name, node, now)
                 : Result<std::optional<std::string>>(NotHere("TakeSignal"));
}
Result<CancelOutcome> ClaimStore::CancelRun(const std::string&, double,
                                            const std::function<bool(const Owner&, double)>&) {
  return NotHere("CancelRun");
}
Result<bool> ClaimStore::CancelRequested(const std::string& run_id) {
  return shared_ ? shared_->CancelRequested(run_id) : Result<bool>(false);
}
Result<int64_t> ClaimStore::ResetBreakers(const std::string&) { return NotHere("ResetBreakers"); }

}  // namespace keel::cli
