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

}  // namespace

Result<bool> PostgresStore::Exists(const std::string& url) {
  auto conn = Connect(pg::WithTimeouts(url));
  if (!conn.ok()) return conn.status();
  auto version = pg::SchemaVersion(**conn);
  if (!version.ok()) return Status::Error(ErrorKind::kPermanent, version.status().message());
  return *version > 0;
}

Result<std::unique_ptr<PostgresStore>> PostgresStore::Open(const std::string& url,
                                                           const PostgresStoreOptions& options) {
  const std::string full = pg::WithTimeouts(url);
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

}  // namespace keel
