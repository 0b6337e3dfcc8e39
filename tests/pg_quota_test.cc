// pg::TakeQuota against a real PostgreSQL server: the bucket arithmetic on
// the database's clock, and several connections (as several hosts would)
// taking from one bucket at once without ever taking more than
// rate x window + burst.

#include "store/postgres/pg_quota.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/postgres/pg_connection.h"
#include "tests/support/pg_database.h"

namespace keel::pg {
namespace {

std::unique_ptr<Connection> Connect(const std::string& url) {
  auto conn = Connection::Open(url);
  REQUIRE_MESSAGE(conn.ok(), conn.status().ToString());
  return std::move(conn).value();
}

// The database's clock, in wall seconds.
double DbNow(Connection& conn) {
  auto rows = conn.Exec("SELECT extract(epoch FROM clock_timestamp())::double precision", {},
                        "reading the clock");
  REQUIRE(rows.ok());
  return rows->real(0, 0);
}

TEST_CASE("TakeQuota on PostgreSQL: full at first, refilled by the database's clock" *
          doctest::timeout(60)) {
  auto url = test::FreshPgDatabase("quota");
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  auto conn = Connect(*url);
  REQUIRE(conn->ExecScript(kQuotaTableSql, "creating quotas").ok());
  // A slow rate, so the time between statements refills next to nothing.
  auto grant = TakeQuota(*conn, "provider:p:rpm", 3, 0.001, 5);
  REQUIRE_MESSAGE(grant.ok(), grant.status().ToString());
  CHECK(grant->taken == 3);
  CHECK(grant->wait_s == 0);
  grant = TakeQuota(*conn, "provider:p:rpm", 4, 0.001, 5);
  REQUIRE(grant.ok());
  CHECK(grant->taken == doctest::Approx(2).epsilon(0.001));
  CHECK(grant->wait_s == doctest::Approx(2000).epsilon(0.01));
  // The row's time is the database's, and tokens round-trip exactly.
  auto rows = conn->Exec("SELECT tokens, updated_at, rate, burst FROM quotas WHERE key = $1",
                         {"provider:p:rpm"}, "reading quotas");
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  CHECK(rows->real(0, 0) == grant->left);
  CHECK(std::abs(rows->real(0, 1) - DbNow(*conn)) < 5);
  CHECK(rows->real(0, 2) == 0.001);
  CHECK(rows->real(0, 3) == 5);
  // A fast rate refills within a moment, up to the burst only.
  grant = TakeQuota(*conn, "provider:q:tpm", 1000, 1e6, 50);
  REQUIRE(grant.ok());
  CHECK(grant->taken == 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  grant = TakeQuota(*conn, "provider:q:tpm", 1000, 1e6, 50);
  CHECK(grant->taken == doctest::Approx(50));
  auto bad = TakeQuota(*conn, "provider:p:rpm", 1, -1, 5);
  CHECK(!bad.ok());
  CHECK(bad.status().kind() == ErrorKind::kPermanent);
}

TEST_CASE("connections taking from one bucket at once stay within rate x window + burst" *
          doctest::timeout(120)) {
  auto url = test::FreshPgDatabase("quota_race");
  if (!url) {
    MESSAGE("no PostgreSQL server");
    return;
  }
  auto setup = Connect(*url);
  REQUIRE(setup->ExecScript(kQuotaTableSql, "creating quotas").ok());
  constexpr double kRate = 200, kBurst = 20;
  const double start = DbNow(*setup);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(800);
  std::mutex mu;
  double taken = 0;
  int takes = 0, failures = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto conn = Connection::Open(*url);
      if (!conn.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        ++failures;
        return;
      }
      while (std::chrono::steady_clock::now() < until) {
        auto grant = TakeQuota(**conn, "provider:shared:rpm", 1 + t % 3, kRate, kBurst);
        std::lock_guard<std::mutex> lock(mu);
        if (!grant.ok()) {
          ++failures;
          continue;
        }
        taken += grant->taken;
        ++takes;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const double window = DbNow(*setup) - start;
  CAPTURE(takes);
  CHECK(failures == 0);
  CHECK(takes > 50);
  CHECK(taken <= kRate * window + kBurst + 1e-6);
  CHECK(taken >= kRate * 0.5 * 0.5);  // the bucket was in use
}

}  // namespace
}  // namespace keel::pg
