#include "store/postgres/pg_store.h"

#include <chrono>
#include <thread>

#include "store/common/write_queue.h"
#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_schema.h"
#include "store/postgres/pg_writer.h"

namespace keel {
namespace {

// How long Open waits for a server that refuses connections (starting up,
// restarting) before it reports it unreachable.
constexpr auto kConnectPatience = std::chrono::seconds(3);
constexpr auto kConnectPause = std::chrono::milliseconds(100);

// `url` with the timeouts the store relies on, unless it sets them: a
// bounded wait for a server that does not answer, and keepalives so that
// a connection to a host that went away fails instead of hanging.
std::string WithTimeouts(const std::string& url) {
  if (!pg::IsPostgresUrl(url)) return url;
  std::string out = url;
  auto add = [&](const char* key, const char* value) {
    if (out.find(std::string(key) + "=") != std::string::npos) return;
    out += out.find('?') == std::string::npos ? '?' : '&';
    out += std::string(key) + "=" + value;
  };
  add("connect_timeout", "5");
  add("keepalives_idle", "10");
  add("keepalives_interval", "5");
  add("keepalives_count", "3");
  return out;
}

// `message` with the password of `url` (as libpq may quote the URL back)
// replaced by "***".
std::string Scrubbed(std::string message, const std::string& url) {
  const std::string redacted = pg::RedactUrl(url);
  size_t start = 0;
  while (start < url.size() && start < redacted.size() && url[start] == redacted[start]) ++start;
  const size_t at = url.find('@', start);
  if (redacted == url || at == std::string::npos) return message;
  const std::string password = url.substr(start, at - start);
  if (password.empty()) return message;
  for (size_t pos = message.find(password); pos != std::string::npos;
       pos = message.find(password, pos + 3)) {
    message.replace(pos, password.size(), "***");
  }
  return message;
}

// Connects to `url`, waiting a little for a server that refuses
// connections; every failure is kPermanent and names the redacted URL.
Result<std::unique_ptr<pg::Connection>> Connect(const std::string& url) {
  const auto deadline = std::chrono::steady_clock::now() + kConnectPatience;
  for (;;) {
    auto conn = pg::Connection::Open(url);
    if (conn.ok()) return conn;
    if (conn.status().kind() == ErrorKind::kPermanent ||
        std::chrono::steady_clock::now() >= deadline) {
      return Status::Error(ErrorKind::kPermanent, Scrubbed(conn.status().message(), url));
    }
    std::this_thread::sleep_for(kConnectPause);
  }
}

Status Unsupported(const char* what) {
  return Status::Error(ErrorKind::kPermanent,
                       std::string(what) + ": not supported by this store");
}

}  // namespace

Result<bool> PostgresStore::Exists(const std::string& url) {
  auto conn = Connect(WithTimeouts(url));
  if (!conn.ok()) return conn.status();
  auto version = pg::SchemaVersion(**conn);
  if (!version.ok()) return Status::Error(ErrorKind::kPermanent, version.status().message());
  return *version > 0;
}

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& url,
                                                           const PostgresStoreOptions& options) {
  const std::string full = WithTimeouts(url);
  auto conn = Connect(full);
  if (!conn.ok()) return conn.status();
  auto version = pg::SchemaVersion(**conn);
  if (!version.ok()) return Status::Error(ErrorKind::kPermanent, version.status().message());
  if (*version == 0 && !options.create_schema) {
    return Status::Error(ErrorKind::kPermanent,
                         "no keel database at " + pg::RedactUrl(url) + " (no keel schema in it)");
  }
  Status migrated = pg::Migrate(**conn);
  if (!migrated.ok()) return Status::Error(ErrorKind::kPermanent, migrated.message());
  return std::unique_ptr<PostgresStore>(new PostgresStore(full, options, std::move(conn).value()));
}

PostgresStore::PostgresStore(const std::string& url, const PostgresStoreOptions& options,
                             std::unique_ptr<pg::Connection> writer_conn)
    : name_(pg::RedactUrl(url.substr(0, url.find('?')))),
      clock_(options.clock != nullptr ? options.clock : SystemClock()),
      pool_(std::make_unique<pg::Pool>(url, options.pool_size)),
      writer_(std::make_unique<pg::PgWriter>(std::move(writer_conn))),
      queue_(std::make_unique<WriteQueue>(writer_.get(), options.stall_timeout)) {}

PostgresStore::~PostgresStore() { queue_.reset(); }

Status PostgresStore::OnWriter(const std::function<Status(pg::Connection&)>& fn, bool urgent) {
  return queue_->Call([&] { return fn(writer_->conn()); }, urgent);
}

// --- Queued writes ---

void PostgresStore::SaveNode(NodeRecord node) { queue_->Push(std::move(node)); }

void PostgresStore::FinishNode(NodeRecord node, EventRecord event) {
  queue_->Push(QueuedNodeFinish{std::move(node), std::move(event)});
}

void PostgresStore::AppendEvent(EventRecord event) { queue_->Push(std::move(event)); }

void PostgresStore::FinishRun(std::string run_id, RunStatus status, std::string error,
                              double finished_at) {
  queue_->Push(QueuedRunFinish{std::move(run_id), status, std::move(error), finished_at});
}

void PostgresStore::Heartbeat(std::string run_id, double now) {
  queue_->Push(QueuedHeartbeat{std::move(run_id), now});
}

Status PostgresStore::Flush() { return queue_->Flush(); }
Status PostgresStore::WriteHealth() { return queue_->Health(); }
uint64_t PostgresStore::Backlog() { return queue_->Backlog(); }

// --- Runs and claims (pg_claims.cc) ---

Status PostgresStore::CreateRun(const RunRecord& run) {
  return queue_->Call([&] { return writer_->CreateRun(run, {}); });
}

Status PostgresStore::CreateForkedRun(const RunRecord& run, const std::vector<NodeRecord>& kept) {
  return queue_->Call([&] { return writer_->CreateRun(run, kept); });
}

Result<ClaimedRun> PostgresStore::Claim(
    const RunRecord& run, int64_t expected_epoch,
    const std::function<bool(const Owner&, double)>& owner_alive, const std::string* from,
    const std::vector<std::string>* rerun) {
  ClaimedRun claimed;
  pg::PgWriter::Rerun request;
  if (from != nullptr) request = {*from, *rerun};
  Status status = queue_->Call([&] {
    auto result =
        writer_->ClaimRun(run, expected_epoch, owner_alive, from != nullptr ? &request : nullptr);
    if (!result.ok()) return result.status();
    claimed = std::move(result).value();
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return claimed;
}

Result<ClaimedRun> PostgresStore::ClaimRun(
    const RunRecord& run, int64_t expected_epoch,
    const std::function<bool(const Owner&, double)>& owner_alive) {
  return Claim(run, expected_epoch, owner_alive, nullptr, nullptr);
}

Result<ClaimedRun> PostgresStore::ClaimRunForRerun(
    const RunRecord& run, int64_t expected_epoch, const std::string& from,
    const std::vector<std::string>& rerun,
    const std::function<bool(const Owner&, double)>& owner_alive) {
  return Claim(run, expected_epoch, owner_alive, &from, &rerun);
}

Result<int64_t> PostgresStore::DeleteFinishedBefore(double wall_time) {
  int64_t deleted = 0;
  Status status = queue_->Call([&] {
    auto result = writer_->DeleteFinishedBefore(wall_time);
    if (!result.ok()) return result.status();
    deleted = *result;
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return deleted;
}

// --- Service-side methods: store/postgres/pg_{breakers,waits,handoff,alerts,
// event_cursor,schedules,node_reads}.h provide them. ---

Result<BreakerSnapshot> PostgresStore::UpdateBreaker(
    const std::string& key, const std::function<void(BreakerSnapshot&)>& update) {
  return Unsupported("UpdateBreaker");
}
Result<std::vector<BreakerRow>> PostgresStore::ListBreakers() {
  return Unsupported("ListBreakers");
}
Result<int64_t> PostgresStore::ResetBreakers(const std::string& key) {
  return Unsupported("ResetBreakers");
}
Status PostgresStore::SendSignal(const std::string& run_id, const std::string& name,
                                 const std::string& data_json, double now) {
  return Unsupported("SendSignal");
}
Result<std::optional<std::string>> PostgresStore::TakeSignal(const std::string& run_id,
                                                             const std::string& name,
                                                             const std::string& node, double now) {
  return Unsupported("TakeSignal");
}
Result<CancelOutcome> PostgresStore::CancelRun(
    const std::string& run_id, double now,
    const std::function<bool(const Owner&, double)>& owner_alive) {
  return Unsupported("CancelRun");
}
Result<bool> PostgresStore::CancelRequested(const std::string& run_id) {
  return Unsupported("CancelRequested");
}
Result<std::vector<Store::StartCandidate>> PostgresStore::ListRunsToStart(double now, bool stopped,
                                                                          int limit) {
  return Store::ListRunsToStart(now, stopped, limit);
}
Result<int64_t> PostgresStore::HandOffRun(
    const std::string& run_id, int64_t expected_epoch, const Owner& to, double now,
    const EventRecord& event, const std::function<bool(const Owner&, double)>& owner_alive) {
  return Store::HandOffRun(run_id, expected_epoch, to, now, event, owner_alive);
}
Status PostgresStore::ReleaseRun(const std::string& run_id, int64_t epoch, const Owner& none,
                                 double now, const std::string& error) {
  return Store::ReleaseRun(run_id, epoch, none, now, error);
}
Status PostgresStore::AppendEventOnce(const EventRecord& event) {
  return Store::AppendEventOnce(event);
}
Result<int64_t> PostgresStore::ScanAlerts(double now, double overlap_s) {
  return Store::ScanAlerts(now, overlap_s);
}
Result<std::vector<Store::AlertRow>> PostgresStore::ClaimAlerts(const std::string& owner,
                                                                double now, double lease_s,
                                                                int limit) {
  return Store::ClaimAlerts(owner, now, lease_s, limit);
}
Result<bool> PostgresStore::CompleteAlert(int64_t id, const std::string& owner, bool delivered,
                                          double now, double retry_at, const std::string& error) {
  return Store::CompleteAlert(id, owner, delivered, now, retry_at, error);
}
Result<std::vector<Store::CursorEvent>> PostgresStore::ReadEventsAfter(int64_t after,
                                                                       const std::string& run_id,
                                                                       int limit) {
  return Store::ReadEventsAfter(after, run_id, limit);
}
Result<int64_t> PostgresStore::LastEventCursor() { return Store::LastEventCursor(); }
Result<Store::StateCounts> PostgresStore::CountState() { return Store::CountState(); }
Result<Store::TickOutcome> PostgresStore::RecordScheduleTick(const std::string& key, int64_t tick,
                                                             const RunRecord& run) {
  return Store::RecordScheduleTick(key, tick, run);
}
Result<std::vector<Store::ScheduleTick>> PostgresStore::LastScheduleTicks() {
  return Store::LastScheduleTicks();
}
Result<std::vector<EventRecord>> PostgresStore::GetEventsAfter(const std::string& run_id,
                                                               int64_t after, int limit) {
  return Store::GetEventsAfter(run_id, after, limit);
}
Result<std::optional<NodeRecord>> PostgresStore::GetNode(const std::string& run_id,
                                                         const std::string& node) {
  return Store::GetNode(run_id, node);
}
Result<std::vector<NodeRecord>> PostgresStore::GetNodesInStatus(const std::string& run_id,
                                                                NodeStatus status, int limit) {
  return Store::GetNodesInStatus(run_id, status, limit);
}
Result<std::vector<EventRecord>> PostgresStore::GetNodeEvents(const std::string& run_id,
                                                              const std::string& node,
                                                              int limit) {
  return Store::GetNodeEvents(run_id, node, limit);
}
Result<Store::ItemPage> PostgresStore::ListMapItems(const std::string& run_id,
                                                    const std::string& map,
                                                    std::optional<NodeStatus> status,
                                                    int64_t offset, int limit) {
  return Store::ListMapItems(run_id, map, status, offset, limit);
}
Result<std::vector<Store::ItemCount>> PostgresStore::CountMapItems(const std::string& run_id) {
  return Store::CountMapItems(run_id);
}
Result<Store::RunOutline> PostgresStore::GetRunOutline(const std::string& run_id) {
  return Store::GetRunOutline(run_id);
}

}  // namespace keel
