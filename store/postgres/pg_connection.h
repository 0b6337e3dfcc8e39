#pragma once
// Thin RAII wrappers over libpq, used by the PostgreSQL store only: a
// Connection owns one PGconn, a Rows one PGresult, a Pool lends connections.
//
// A Connection is not thread-safe: one thread at a time uses it (the Pool
// hands each out to one borrower; the store's writer thread owns its own).
// The Pool is safe from any thread.
//
// Errors become a Status naming what was being done and PostgreSQL's
// message. Whether retrying can help decides the kind: a lost connection,
// a server shutting down or starting, a serialization failure, a deadlock,
// a full disk, too many connections and a read-only server are kTransient;
// everything else (bad SQL, a constraint, a missing database or a refused
// login) is kPermanent.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/mutex.h"
#include "engine/status.h"

struct pg_conn;
struct pg_result;

namespace keel::pg {

// Query parameters, as text ($1, $2, ...); nullopt is SQL NULL.
using Params = std::vector<std::optional<std::string>>;

// One statement's result: rows of text columns. Move-only.
class Rows {
 public:
  Rows() = default;
  explicit Rows(pg_result* result);
  ~Rows();
  Rows(Rows&& other) noexcept;
  Rows& operator=(Rows&& other) noexcept;
  Rows(const Rows&) = delete;
  Rows& operator=(const Rows&) = delete;

  int size() const;     // rows
  int affected() const;  // rows an INSERT, UPDATE or DELETE changed
  bool null(int row, int col) const;
  std::string_view text(int row, int col) const;  // "" for NULL
  std::string str(int row, int col) const { return std::string(text(row, col)); }
  int64_t int64(int row, int col) const;  // 0 for NULL
  double real(int row, int col) const;    // 0 for NULL
  bool boolean(int row, int col) const;   // PostgreSQL's 't'

 private:
  pg_result* result_ = nullptr;
};

// One SQL statement and its parameters, for Connection::Pipeline.
struct Statement {
  std::string sql;
  Params params;
};

// The SQLSTATE of a failed statement ("40001"), kept in the Status message
// as "[SQLSTATE 40001]"; empty when the Status has none.
std::string SqlStateOf(const Status& status);

class Connection {
 public:
  // Connects to `url` (a postgresql:// URI or a libpq key=value string).
  // `redacted` names the database in messages without its password.
  static Result<std::unique_ptr<Connection>> Open(const std::string& url);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs one statement with `params`. `what` names it in errors. Queries
  // and DML are prepared once per session and run by name after that.
  Result<Rows> Exec(std::string_view sql, const Params& params, std::string_view what);
  // Runs `sql`, one or more statements without parameters or rows.
  Status ExecScript(const char* sql, std::string_view what);

  // Sends every statement then one sync, and reads their results: one round
  // trip (libpq pipeline mode). Runs them in one implicit transaction
  // unless they hold BEGIN/COMMIT themselves. On the first failure the rest
  // are skipped by the server and the error is returned.
  Result<std::vector<Rows>> Pipeline(const std::vector<Statement>& statements,
                                     std::string_view what);

  // Runs `body` between BEGIN (at `isolation`, e.g. "READ COMMITTED",
  // "SERIALIZABLE") and COMMIT. When the transaction fails with a
  // serialization failure or a deadlock, or the connection was lost (and
  // comes back), runs it again from the start, up to `attempts` times, so
  // `body` must do nothing outside the database that it cannot repeat. A
  // body that returns an error rolls back and returns it.
  Status Transaction(const std::function<Status(Connection&)>& body, std::string_view what,
                     const char* isolation = "READ COMMITTED", int attempts = 5);

  // Whether the connection is usable; if not, tries once to connect again.
  // A session that was refused a write for being read-only is replaced too:
  // the database may take writes on a new one (a failover, or
  // default_transaction_read_only turned off), never on this one.
  bool Healthy();
  // Whether the connection is up and inside a transaction (open or failed).
  bool InTransaction() const;
  // The server's process id for this connection (pg_backend_pid()).
  int BackendPid() const;
  // The database's name and host, for messages: "keel@127.0.0.1:5432".
  const std::string& name() const { return name_; }
  pg_conn* get() const { return conn_; }

 private:
  Connection(pg_conn* conn, std::string url);
  Status ErrorOf(pg_result* result, std::string_view what) const;
  // Connects again; the prepared statements went with the old session.
  void Reset();
  // The name `sql` is prepared under on this session (null when it is not
  // yet); whether it should be, with `pending` others being prepared: a
  // query or DML statement, while the cache has room; and the name the
  // next of those gets.
  const std::string* PreparedName(const std::string& sql) const;
  bool ShouldPrepare(const std::string& sql, size_t pending) const;
  std::string NameFor(size_t pending) const;

  pg_conn* conn_;
  std::string url_;
  std::string name_;
  // Set by ErrorOf on SQLSTATE 25006 (a write in a read-only transaction);
  // Healthy() then connects again. One thread uses a connection at a time.
  mutable bool read_only_session_ = false;
  // Statements prepared on this session, by SQL text. Parsing and planning
  // the unnest statements of a commit costs more than running them.
  std::unordered_map<std::string, std::string> prepared_;
};

// Connections to one database, lent one borrower at a time. Any thread.
class Pool {
 public:
  // Up to `max_idle` connections are kept between borrowings.
  explicit Pool(std::string url, int max_idle = 4);
  ~Pool();

  // A connection, returned to the pool when the Lease goes. Opens a new one
  // when none is idle; a connection that broke is dropped, not kept.
  class Lease {
   public:
    Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
    ~Lease();
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    Connection* operator->() { return conn_.get(); }
    Connection& operator*() { return *conn_; }

   private:
    Pool* pool_;
    std::unique_ptr<Connection> conn_;
  };
  Result<Lease> Acquire();
  const std::string& url() const { return url_; }

 private:
  void Return(std::unique_ptr<Connection> conn);

  const std::string url_;
  const int max_idle_;
  Mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_ GUARDED_BY(mu_);
};

// Whether `db` names a PostgreSQL database rather than a SQLite file: it
// starts with postgresql:// or postgres://.
bool IsPostgresUrl(std::string_view db);

// `url` (a postgresql:// one; other strings are returned as they are) with
// the timeouts a connection to a host that went away needs, unless it sets
// them: connect_timeout, TCP keepalives and tcp_user_timeout such that a
// connection whose peer stopped answering fails within about
// `dead_after_s` seconds instead of hanging until the kernel gives up.
std::string WithTimeouts(const std::string& url, double dead_after_s = 30);

// `url` with any password replaced by "***", for messages and listings.
std::string RedactUrl(std::string_view url);

}  // namespace keel::pg
