#include "cli/claim_store.h"

#include <algorithm>
#include <unordered_map>

#include "engine/clock.h"

namespace keel::cli {
namespace {

Status NotHere(const char* what) {
  return Status::Error(ErrorKind::kPermanent,
                       std::string(what) + ": not available to a node run by a worker");
}

}  // namespace

BreakerSnapshot BreakerBook::Update(const std::string& key,
                                    const std::function<void(BreakerSnapshot&)>& update,
                                    double now) {
  MutexLock lock(&mu_);
  BreakerRow& row = rows_[key];
  row.key = key;
  update(row.snapshot);
  row.updated_at = now;
  return row.snapshot;
}

std::vector<BreakerRow> BreakerBook::List() {
  MutexLock lock(&mu_);
  std::vector<BreakerRow> out;
  for (const auto& [key, row] : rows_) out.push_back(row);
  return out;
}

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

bool InsideNode(const std::string& name, const std::string& node) {
  return name.size() > node.size() && name.compare(0, node.size(), node) == 0 &&
         (name[node.size()] == '[' || name[node.size()] == '/');
}

const std::vector<std::string>& HistoryKinds() {
  static const std::vector<std::string> kinds{"checkpoint", "fallback_event", kUsageEventKind,
                                              "node_started", "wait_started"};
  return kinds;
}

bool IsHistoryKind(const std::string& kind) {
  const std::vector<std::string>& kinds = HistoryKinds();
  return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
}

void ClaimStore::TakeInner(const std::string& node, std::vector<NodeRecord>* records,
                           std::vector<EventRecord>* events) {
  MutexLock lock(&mu_);
  std::unordered_map<std::string, size_t> at;
  std::vector<NodeRecord> kept;
  for (NodeRecord& rec : records_) {
    if (!InsideNode(rec.node, node)) {
      kept.push_back(std::move(rec));
      continue;
    }
    auto [it, fresh] = at.emplace(rec.node, records->size());
    if (fresh) {
      records->push_back(std::move(rec));
    } else {
      (*records)[it->second] = std::move(rec);
    }
  }
  records_.swap(kept);
  std::vector<EventRecord> rest;
  for (EventRecord& e : events_) {
    const bool journal = e.node == node && IsHistoryKind(e.kind);
    (journal || InsideNode(e.node, node) ? *events : rest).push_back(std::move(e));
  }
  events_.swap(rest);
}

void ClaimStore::Restore(std::vector<NodeRecord> records, std::vector<EventRecord> events) {
  MutexLock lock(&mu_);
  records.insert(records.end(), std::make_move_iterator(records_.begin()),
                 std::make_move_iterator(records_.end()));
  records_.swap(records);
  events.insert(events.end(), std::make_move_iterator(events_.begin()),
                std::make_move_iterator(events_.end()));
  events_.swap(events);
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
  if (shared_) {
    auto stored = shared_->UpdateBreaker(key, update);
    if (stored.ok()) return stored;
  }
  return book_->Update(key, update, SystemClock()->WallNow());
}
Result<std::vector<BreakerRow>> ClaimStore::ListBreakers() {
  if (shared_) {
    auto listed = shared_->ListBreakers();
    if (listed.ok()) return listed;
  }
  return book_->List();
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
