#include "store/postgres/pg_connection.h"

#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace keel::pg {
namespace {

// SQLSTATEs after which the same work may succeed later (see the header).
bool RetryableState(std::string_view state) {
  if (state.size() != 5) return true;  // no state: the connection failed
  if (state.substr(0, 2) == "08") return true;  // connection exception
  if (state.substr(0, 2) == "53") return true;  // disk full, out of memory, too many connections
  return state == "40001" || state == "40P01" || state == "57P01" || state == "57P02" ||
         state == "57P03" || state == "25006" || state == "55P03" || state == "57014";
}

// A serialization failure or a deadlock: the transaction may simply be run again.
bool RerunnableState(std::string_view state) { return state == "40001" || state == "40P01"; }

std::string Trimmed(const char* message) {
  std::string text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

}  // namespace

Rows::Rows(pg_result* result) : result_(result) {}
Rows::~Rows() {
  if (result_) PQclear(result_);
}
Rows::Rows(Rows&& other) noexcept : result_(other.result_) { other.result_ = nullptr; }
Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    if (result_) PQclear(result_);
    result_ = other.result_;
    other.result_ = nullptr;
  }
  return *this;
}
int Rows::size() const { return result_ ? PQntuples(result_) : 0; }
int Rows::affected() const {
  if (!result_) return 0;
  const char* n = PQcmdTuples(result_);
  return n && *n ? std::atoi(n) : 0;
}
bool Rows::null(int row, int col) const { return PQgetisnull(result_, row, col) != 0; }
std::string_view Rows::text(int row, int col) const {
  return std::string_view(PQgetvalue(result_, row, col),
                          static_cast<size_t>(PQgetlength(result_, row, col)));
}
int64_t Rows::int64(int row, int col) const {
  return null(row, col) ? 0 : std::strtoll(PQgetvalue(result_, row, col), nullptr, 10);
}
double Rows::real(int row, int col) const {
  return null(row, col) ? 0 : std::strtod(PQgetvalue(result_, row, col), nullptr);
}
bool Rows::boolean(int row, int col) const { return text(row, col) == "t"; }

std::string SqlStateOf(const Status& status) {
  const std::string& m = status.message();
  size_t at = m.rfind("[SQLSTATE ");
  if (at == std::string::npos || at + 15 > m.size()) return "";
  return m.substr(at + 10, 5);
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& url) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (!conn) {
    return Status::Error(ErrorKind::kTransient, RedactUrl(url) + ": out of memory connecting");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = Trimmed(PQerrorMessage(conn));
    PQfinish(conn);
    // A refused connection or a server starting up may pass; a wrong
    // password or a missing database will not.
    bool permanent = why.find("does not exist") != std::string::npos ||
                     why.find("authentication failed") != std::string::npos ||
                     why.find("invalid") != std::string::npos;
    return Status::Error(permanent ? ErrorKind::kPermanent : ErrorKind::kTransient,
                         RedactUrl(url) + ": cannot connect: " + why);
  }
  // Times are wall seconds in the store; UTC keeps any text rendering stable.
  PGresult* r = PQexec(conn, "SET TIME ZONE 'UTC'; SET client_min_messages = warning");
  PQclear(r);
  return std::unique_ptr<Connection>(new Connection(conn, url));
}

Connection::Connection(pg_conn* conn, std::string url) : conn_(conn), url_(std::move(url)) {
  const char* host = PQhost(conn_);
  const char* port = PQport(conn_);
  name_ = std::string(PQdb(conn_)) + "@" + (host && *host != '/' ? host : "localhost") +
          (port && *port ? std::string(":") + port : "");
}

Connection::~Connection() { PQfinish(conn_); }

Status Connection::ErrorOf(pg_result* result, std::string_view what) const {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  // The primary message alone: the full one spans lines (a caret under the SQL).
  std::string message = Trimmed(result ? PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY) : nullptr);
  if (message.empty()) message = Trimmed(PQerrorMessage(conn_));
  if (message.empty()) message = "connection lost";
  std::string text = name_ + ": " + std::string(what) + ": " + message;
  if (state) text += std::string(" [SQLSTATE ") + state + "]";
  if (state && std::string_view(state) == "25006") read_only_session_ = true;
  bool lost = PQstatus(conn_) != CONNECTION_OK;
  bool retry = lost || RetryableState(state ? state : "");
  return Status::Error(retry ? ErrorKind::kTransient : ErrorKind::kPermanent, text);
}

Result<Rows> Connection::Exec(std::string_view sql, const Params& params,
                              std::string_view what) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  std::string text(sql);
  const std::string* name = PreparedName(text);
  if (name == nullptr && ShouldPrepare(text, 0)) {
    std::string fresh = NameFor(0);
    PGresult* made = PQprepare(conn_, fresh.c_str(), text.c_str(), 0, nullptr);
    bool ok = made && PQresultStatus(made) == PGRES_COMMAND_OK;
    if (made) PQclear(made);
    if (ok) name = &prepared_.emplace(text, std::move(fresh)).first->second;
  }
  int n = static_cast<int>(values.size());
  PGresult* r = name ? PQexecPrepared(conn_, name->c_str(), n, values.data(), nullptr, nullptr, 0)
                     : PQexecParams(conn_, text.c_str(), n, nullptr, values.data(), nullptr,
                                    nullptr, 0);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Status error = ErrorOf(r, what);
    if (r) PQclear(r);
    return error;
  }
  return Rows(r);
}

const std::string* Connection::PreparedName(const std::string& sql) const {
  auto it = prepared_.find(sql);
  return it == prepared_.end() ? nullptr : &it->second;
}

bool Connection::ShouldPrepare(const std::string& sql, size_t pending) const {
  constexpr size_t kMaxPrepared = 256;
  if (prepared_.size() + pending >= kMaxPrepared) return false;
  for (const char* verb : {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}) {
    if (sql.compare(0, std::strlen(verb), verb) == 0) return true;
  }
  return false;
}

std::string Connection::NameFor(size_t pending) const {
  return "keel_" + std::to_string(prepared_.size() + pending + 1);
}

void Connection::Reset() {
  prepared_.clear();
  PQreset(conn_);
}

Status Connection::ExecScript(const char* sql, std::string_view what) {
  PGresult* r = PQexec(conn_, sql);
  ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    Status error = ErrorOf(r, what);
    if (r) PQclear(r);
    return error;
  }
  PQclear(r);
  return Status::Ok();
}

Result<std::vector<Rows>> Connection::Pipeline(const std::vector<Statement>& statements,
                                               std::string_view what) {
  if (!PQenterPipelineMode(conn_)) return ErrorOf(nullptr, what);
  // Statements seen for the first time on this session are prepared in the
  // same pipeline: (result index of the prepare, sql, name).
  struct Preparing {
    size_t result;
    const std::string* sql;
    std::string name;
  };
  std::vector<Preparing> preparing;
  std::vector<bool> is_prepare;  // per result the server sends back
  bool sent = true;
  for (const Statement& s : statements) {
    std::vector<const char*> values;
    values.reserve(s.params.size());
    for (const auto& p : s.params) values.push_back(p ? p->c_str() : nullptr);
    const std::string* name = PreparedName(s.sql);
    for (const Preparing& p : preparing) {
      if (*p.sql == s.sql) name = &p.name;
    }
    if (name == nullptr && ShouldPrepare(s.sql, preparing.size())) {
      std::string fresh = NameFor(preparing.size());
      if (!PQsendPrepare(conn_, fresh.c_str(), s.sql.c_str(), 0, nullptr)) {
        sent = false;
        break;
      }
      preparing.push_back({is_prepare.size(), &s.sql, std::move(fresh)});
      is_prepare.push_back(true);
      name = &preparing.back().name;
    }
    int n = static_cast<int>(values.size());
    bool ok = name ? PQsendQueryPrepared(conn_, name->c_str(), n, values.data(), nullptr,
                                         nullptr, 0)
                   : PQsendQueryParams(conn_, s.sql.c_str(), n, nullptr, values.data(), nullptr,
                                       nullptr, 0);
    if (!ok) {
      sent = false;
      break;
    }
    is_prepare.push_back(false);
  }
  if (!sent || !PQpipelineSync(conn_)) {
    Status error = ErrorOf(nullptr, what);
    PQexitPipelineMode(conn_);  // fails while results are pending: the connection is reset below
    if (PQpipelineStatus(conn_) != PQ_PIPELINE_OFF) Reset();
    return error;
  }
  std::vector<Rows> out;
  out.reserve(statements.size());
  Status first_error;
  std::vector<bool> prepared_ok(is_prepare.size(), false);
  for (size_t i = 0; i < is_prepare.size(); ++i) {
    PGresult* r = PQgetResult(conn_);
    if (!r) {  // the connection failed mid-way
      first_error = ErrorOf(nullptr, what);
      break;
    }
    ExecStatusType st = PQresultStatus(r);
    bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok && st != PGRES_PIPELINE_ABORTED && first_error.ok()) first_error = ErrorOf(r, what);
    if (is_prepare[i]) {
      prepared_ok[i] = ok;
      PQclear(r);
    } else {
      out.emplace_back(r);
    }
    // Each statement's results end with a null.
    while (PGresult* extra = PQgetResult(conn_)) PQclear(extra);
  }
  // The sync's own result.
  while (PGresult* r = PQgetResult(conn_)) {
    bool sync = PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (sync) break;
  }
  if (!PQexitPipelineMode(conn_)) {
    Reset();
  } else {
    for (Preparing& p : preparing) {
      if (prepared_ok[p.result]) prepared_.emplace(*p.sql, std::move(p.name));
    }
  }
  if (!first_error.ok()) return first_error;
  return out;
}

Status Connection::Transaction(const std::function<Status(Connection&)>& body,
                               std::string_view what, const char* isolation, int attempts) {
  Status last;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (!Healthy()) {
      last = Status::Error(ErrorKind::kTransient,
                           name_ + ": " + std::string(what) + ": " + Trimmed(PQerrorMessage(conn_)));
      std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
      continue;
    }
    std::string begin = std::string("BEGIN ISOLATION LEVEL ") + isolation;
    last = ExecScript(begin.c_str(), what);
    if (last.ok()) {
      last = body(*this);
      if (last.ok()) {
        last = ExecScript("COMMIT", what);
        if (last.ok()) return last;
        // A COMMIT whose answer was lost may have committed: only a refusal
        // the server reported (a serialization failure) is safe to repeat.
        if (!RerunnableState(SqlStateOf(last))) return last;
        continue;
      }
    }
    if (PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE) {
      PGresult* r = PQexec(conn_, "ROLLBACK");
      PQclear(r);
    }
    std::string state = SqlStateOf(last);
    bool lost = PQstatus(conn_) != CONNECTION_OK;
    if (!RerunnableState(state) && !lost) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(5 * attempt * attempt));
  }
  return last;
}

bool Connection::Healthy() {
  if (PQstatus(conn_) == CONNECTION_OK && !read_only_session_) return true;
  read_only_session_ = false;
  Reset();
  if (PQstatus(conn_) != CONNECTION_OK) return false;
  PGresult* r = PQexec(conn_, "SET TIME ZONE 'UTC'; SET client_min_messages = warning");
  PQclear(r);
  return true;
}

bool Connection::InTransaction() const {
  return PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE;
}

int Connection::BackendPid() const { return PQbackendPID(conn_); }

Pool::Pool(std::string url, int max_idle) : url_(std::move(url)), max_idle_(max_idle) {}
Pool::~Pool() = default;

Pool::Lease::~Lease() {
  if (pool_ && conn_) pool_->Return(std::move(conn_));
}

Result<Pool::Lease> Pool::Acquire() {
  {
    MutexLock lock(&mu_);
    while (!idle_.empty()) {
      std::unique_ptr<Connection> conn = std::move(idle_.back());
      idle_.pop_back();
      // A server that restarted or ended the session closed the socket:
      // reading what is pending notices it, so the borrower gets a live
      // connection instead of a first query that fails.
      if (PQconsumeInput(conn->get()) == 1 && PQstatus(conn->get()) == CONNECTION_OK) {
        return Lease(this, std::move(conn));
      }
    }
  }
  auto conn = Connection::Open(url_);
  if (!conn.ok()) return conn.status();
  return Lease(this, std::move(*conn));
}

void Pool::Return(std::unique_ptr<Connection> conn) {
  if (PQstatus(conn->get()) != CONNECTION_OK || PQtransactionStatus(conn->get()) != PQTRANS_IDLE) {
    return;  // broken or mid-transaction: closed, not kept
  }
  MutexLock lock(&mu_);
  if (static_cast<int>(idle_.size()) < max_idle_) idle_.push_back(std::move(conn));
}

std::string WithTimeouts(const std::string& url, double dead_after_s) {
  if (!IsPostgresUrl(url)) return url;
  std::string out = url;
  auto add = [&](const char* key, double value) {
    if (out.find(std::string(key) + "=") != std::string::npos) return;
    out += out.find('?') == std::string::npos ? '?' : '&';
    out += std::string(key) + "=" + std::to_string(static_cast<int64_t>(value));
  };
  const double third = std::max(1.0, dead_after_s / 3);
  add("connect_timeout", std::max(2.0, std::min(5.0, dead_after_s / 2)));
  add("keepalives_idle", third);
  add("keepalives_interval", std::max(1.0, third / 2));
  add("keepalives_count", 2);
  add("tcp_user_timeout", third * 1000);
  return out;
}

bool IsPostgresUrl(std::string_view db) {
  return db.starts_with("postgresql://") || db.starts_with("postgres://");
}

std::string RedactUrl(std::string_view url) {
  std::string out(url);
  size_t scheme = out.find("://");
  if (scheme == std::string::npos) return out;
  size_t at = out.find('@', scheme + 3);
  size_t slash = out.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return out;
  size_t colon = out.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return out;
  return out.substr(0, colon + 1) + "***" + out.substr(at);
}

}  // namespace keel::pg
