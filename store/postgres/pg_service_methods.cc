// PostgresStore's service-side methods: each borrows a pooled connection and
// calls its free function in store/postgres/pg_{breakers,waits,handoff,
// alerts,event_cursor,schedules,node_reads}.h, which decides any race in one
// transaction of its own. TakeSignal runs on the writer thread, which holds
// the epochs it is fenced by.

#include <utility>

#include "store/postgres/pg_alerts.h"
#include "store/postgres/pg_breakers.h"
#include "store/postgres/pg_event_cursor.h"
#include "store/postgres/pg_handoff.h"
#include "store/postgres/pg_node_reads.h"
#include "store/postgres/pg_quota.h"
#include "store/postgres/pg_schedules.h"
#include "store/postgres/pg_store.h"
#include "store/postgres/pg_waits.h"
#include "store/postgres/pg_writer.h"

namespace keel {
namespace {

// fn(connection) on a connection borrowed from `pool`.
template <typename Fn>
auto WithPool(pg::Pool& pool, Fn fn) -> decltype(fn(std::declval<pg::Connection&>())) {
  auto lease = pool.Acquire();
  if (!lease.ok()) return lease.status();
  return fn(**lease);
}

}  // namespace

Result<BreakerSnapshot> PostgresStore::UpdateBreaker(
    const std::string& key, const std::function<void(BreakerSnapshot&)>& update) {
  const double now = clock_->WallNow();
  return WithPool(*pool_, [&](pg::Connection& c) { return pg::UpdateBreaker(c, key, update, now); });
}
Result<std::vector<BreakerRow>> PostgresStore::ListBreakers() {
  return WithPool(*pool_, [](pg::Connection& c) { return pg::ListBreakers(c); });
}
Result<int64_t> PostgresStore::ResetBreakers(const std::string& key) {
  return WithPool(*pool_, [&](pg::Connection& c) { return pg::ResetBreakers(c, key); });
}
Status PostgresStore::SendSignal(const std::string& run_id, const std::string& name,
                                 const std::string& data_json, double now) {
  return WithPool(*pool_,
                  [&](pg::Connection& c) { return pg::SendSignal(c, run_id, name, data_json, now); });
}
Result<std::optional<std::string>> PostgresStore::TakeSignal(const std::string& run_id,
                                                             const std::string& name,
                                                             const std::string& node, double now) {
  std::optional<std::string> taken;
  Status status = OnWriter(
      [&](pg::Connection& c) -> Status {
        auto result = pg::TakeSignal(c, run_id, name, node, now, writer_->HeldEpoch(run_id));
        if (!result.ok()) return result.status();
        taken = std::move(*result);
        return Status::Ok();
      },
      /*urgent=*/true);
  if (!status.ok()) return status;
  return taken;
}
Result<CancelOutcome> PostgresStore::CancelRun(
    const std::string& run_id, double now,
    const std::function<bool(const Owner&, double)>& owner_alive) {
  return WithPool(*pool_,
                  [&](pg::Connection& c) { return pg::CancelRun(c, run_id, now, owner_alive); });
}
Result<bool> PostgresStore::CancelRequested(const std::string& run_id) {
  return WithPool(*pool_, [&](pg::Connection& c) { return pg::CancelRequested(c, run_id); });
}
Result<std::vector<Store::StartCandidate>> PostgresStore::ListRunsToStart(double now, bool stopped,
                                                                          int limit) {
  return WithPool(*pool_,
                  [&](pg::Connection& c) { return pg::ListRunsToStart(c, now, stopped, limit); });
}
Result<int64_t> PostgresStore::HandOffRun(
    const std::string& run_id, int64_t expected_epoch, const Owner& to, double now,
    const EventRecord& event, const std::function<bool(const Owner&, double)>& owner_alive) {
  return WithPool(*pool_, [&](pg::Connection& c) {
    return pg::HandOffRun(c, run_id, expected_epoch, to, now, event, owner_alive);
  });
}
Status PostgresStore::ReleaseRun(const std::string& run_id, int64_t epoch, const Owner& none,
                                 double now, const std::string& error) {
  return WithPool(*pool_, [&](pg::Connection& c) {
    return pg::ReleaseRun(c, run_id, epoch, none, now, error);
  });
}
Status PostgresStore::AppendEventOnce(const EventRecord& event) {
  return WithPool(*pool_, [&](pg::Connection& c) { return pg::AppendEventOnce(c, event); });
}
Result<int64_t> PostgresStore::ScanAlerts(double now, double overlap_s) {
  return WithPool(*pool_, [&](pg::Connection& c) { return pg::ScanAlerts(c, now, overlap_s); });
}
Result<std::vector<Store::AlertRow>> PostgresStore::ClaimAlerts(const std::string& owner,
                                                                double now, double lease_s,
                                                                int limit) {
  return WithPool(*pool_, [&](pg::Connection& c) {
    return pg::ClaimAlerts(c, owner, now, lease_s, limit);
  });
}
Result<bool> PostgresStore::CompleteAlert(int64_t id, const std::string& owner, bool delivered,
                                          double now, double retry_at, const std::string& error) {
  return WithPool(*pool_, [&](pg::Connection& c) {
    return pg::CompleteAlert(c, id, owner, delivered, now, retry_at, error);
  });
}
Result<std::vector<Store::CursorEvent>> PostgresStore::ReadEventsAfter(int64_t after,
                                                                       const std::string& run_id,
                                                                       int limit) {
  return WithPool(*pool_,
                  [&](pg::Connection& c) { return pg::ReadEventsAfter(c, after, run_id, limit); });
}
Result<int64_t> PostgresStore::LastEventCursor() {
  return WithPool(*pool_, [](pg::Connection& c) { return pg::LastEventCursor(c); });
}
Result<Store::StateCounts> PostgresStore::CountState() {
  return WithPool(*pool_, [](pg::Connection& c) { return pg::CountState(c); });
}
Result<Store::TickOutcome> PostgresStore::RecordScheduleTick(const std::string& key, int64_t tick,
                                                             const RunRecord& run) {
  return WithPool(*pool_,
                  [&](pg::Connection& c) { return pg::RecordScheduleTick(c, key, tick, run); });
}
Result<std::vector<Store::ScheduleTick>> PostgresStore::LastScheduleTicks() {
  return WithPool(*pool_, [](pg::Connection& c) { return pg::LastScheduleTicks(c); });
}
Result<std::vector<EventRecord>> PostgresStore::GetEventsAfter(const std::string& run_id,
                                                               int64_t after, int limit) {
  return WithPool(*pool_,
                  [&](pg::Connection& c) { return pg::GetEventsAfter(c, run_id, after, limit); });
}
Result<std::optional<NodeRecord>> PostgresStore::GetNode(const std::string& run_id,
                                                         const std::string& node) {
  return WithPool(*pool_, [&](pg::Connection& c) { return pg::GetNode(c, run_id, node); });
}
Result<std::vector<NodeRecord>> PostgresStore::GetNodesInStatus(const std::string& run_id,
                                                                NodeStatus status, int limit) {
  return WithPool(*pool_,
                  [&](pg::Connection& c) { return pg::GetNodesInStatus(c, run_id, status, limit); });
}
Result<std::vector<EventRecord>> PostgresStore::GetNodeEvents(const std::string& run_id,
                                                              const std::string& node,
                                                              int limit) {
  return WithPool(*pool_,
                  [&](pg::Connection& c) { return pg::GetNodeEvents(c, run_id, node, limit); });
}
Result<Store::ItemPage> PostgresStore::ListMapItems(const std::string& run_id,
                                                    const std::string& map,
                                                    std::optional<NodeStatus> status,
                                                    int64_t offset, int limit) {
  return WithPool(*pool_, [&](pg::Connection& c) {
    return pg::ListMapItems(c, run_id, map, status, offset, limit);
  });
}
Result<std::vector<Store::ItemCount>> PostgresStore::CountMapItems(const std::string& run_id) {
  return WithPool(*pool_, [&](pg::Connection& c) { return pg::CountMapItems(c, run_id); });
}
Result<Store::RunOutline> PostgresStore::GetRunOutline(const std::string& run_id) {
  return WithPool(*pool_, [&](pg::Connection& c) { return pg::GetRunOutline(c, run_id); });
}

Result<QuotaGrant> PostgresStore::TakeQuota(const std::string& key, double want,
                                            double rate_per_s, double burst, double) {
  return WithPool(*pool_, [&](pg::Connection& c) {
    return pg::TakeQuota(c, key, want, rate_per_s, burst);
  });
}

Result<int> PostgresStore::HoldSlots(const std::string& key, const std::string& holder, int want,
                                     int limit, double lease_s, double) {
  return WithPool(*pool_, [&](pg::Connection& c) {
    return pg::HoldSlots(c, key, holder, want, limit, lease_s);
  });
}

}  // namespace keel
