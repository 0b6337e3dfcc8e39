// Two processes calling through one recovering breaker in a shared database
// (a SQLite file; PostgreSQL too when the tests' server runs) together admit
// the ramp's share of their calls. The share is kept as a credit in the
// breaker's row and every decision is one transaction on it, so the calls
// admitted by both lie within one call of the sum of the shares at which
// they were asked, however the two interleave: that is the tolerance.

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/breaker_registry.h"
#include "store/postgres/pg_store.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/support/pg_database.h"
#include "tests/support/temp_dir.h"

namespace keel {
namespace {

constexpr double kSince = 1000;  // when the ramp began
constexpr int kCalls = 300;      // per process

BreakerConfig Config() {
  BreakerConfig c;
  c.key = "svc";
  c.failures = 1;
  c.ramp = 100;
  c.ramp_start = 0.2;
  return c;
}

// The time of call k of process p: the two walk the ramp from 10% to 90%,
// one a little ahead of the other.
double CallTime(int p, int k) { return kSince + 10 + 80.0 * k / kCalls + p * 0.05; }

using Opener = std::unique_ptr<Store> (*)(const std::string& where);

std::unique_ptr<Store> OpenSqlite(const std::string& path) {
  auto store = SqliteStore::Open(path, SqliteStoreOptions());
  if (!store.ok()) return nullptr;
  return std::move(store).value();
}

std::unique_ptr<Store> OpenPostgres(const std::string& url) {
  auto store = PostgresStore::Open(url, PostgresStoreOptions());
  if (!store.ok()) return nullptr;
  return std::move(store).value();
}

// In a child: waits for `go` to close, then makes its calls and writes
// "admitted share_sum failures" to `out`. Never returns.
[[noreturn]] void Caller(int p, Opener open, const std::string& where, int go, int out) {
  std::unique_ptr<Store> store = open(where);
  char byte;
  while (read(go, &byte, 1) > 0) {
  }
  int admitted = 0, store_errors = store ? 0 : 1;
  double shares = 0;
  if (store) {
    BreakerConfig c = Config();
    BreakerRegistry registry(store.get());
    for (int k = 0; k < kCalls; ++k) {
      double now = CallTime(p, k);
      shares += c.ramp_start + (1 - c.ramp_start) * (now - kSince) / c.ramp;
      auto d = registry.Admit(c, now);
      if (d.state != BreakerState::kRecovering) ++store_errors;
      if (d.admission == Admission::kAllowed) {
        ++admitted;
        registry.Record(c, true, d.probe, now);
      }
    }
  }
  char line[128];
  int n = std::snprintf(line, sizeof line, "%d %.17g %d", admitted, shares, store_errors);
  (void)!write(out, line, n);
  _exit(0);
}

void CheckSharedRamp(Opener open, const std::string& where) {
  {
    std::unique_ptr<Store> store = open(where);
    REQUIRE(store);
    auto set = store->UpdateBreaker("svc", [](BreakerSnapshot& s) {
      s.state = BreakerState::kRecovering;
      s.recovering_since = kSince;
      s.ramp_credit = 1;
      s.config = Config();
    });
    REQUIRE(set.ok());
  }
  int go[2];
  REQUIRE(pipe(go) == 0);
  std::vector<pid_t> pids;
  std::vector<int> outs;
  for (int p = 0; p < 2; ++p) {
    int out[2];
    REQUIRE(pipe(out) == 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(go[1]);
      close(out[0]);
      Caller(p, open, where, go[0], out[1]);
    }
    close(out[1]);
    pids.push_back(pid);
    outs.push_back(out[0]);
  }
  close(go[0]);
  close(go[1]);  // both start now
  int admitted = 0, errors = 0;
  double shares = 0;
  for (int p = 0; p < 2; ++p) {
    std::string text;
    char buf[256];
    ssize_t n;
    while ((n = read(outs[p], buf, sizeof buf)) > 0) text.append(buf, n);
    close(outs[p]);
    int status = 0;
    REQUIRE(waitpid(pids[p], &status, 0) == pids[p]);
    REQUIRE(WIFEXITED(status));
    int a = 0, e = 0;
    double s = 0;
    REQUIRE(std::sscanf(text.c_str(), "%d %lf %d", &a, &s, &e) == 3);
    MESSAGE("process " << p << ": " << a << " of " << kCalls << " admitted");
    admitted += a;
    shares += s;
    errors += e;
  }
  CHECK(errors == 0);
  MESSAGE(admitted << " admitted of " << 2 * kCalls << "; the ramp's share of them is " << shares);
  CHECK(admitted > shares);
  CHECK(admitted <= shares + 1);
  std::unique_ptr<Store> store = open(where);
  auto rows = store->ListBreakers();
  REQUIRE(rows.ok());
  REQUIRE(rows->size() == 1);
  const BreakerSnapshot& s = rows->front().snapshot;
  CHECK(s.state == BreakerState::kRecovering);
  CHECK(s.calls == admitted);
  // Every decision of both went through the one credit: it holds what the
  // shares asked for less what was admitted.
  CHECK(s.ramp_credit == doctest::Approx(1 + shares - admitted).epsilon(1e-9));
  CHECK(s.rejected == 2 * kCalls - admitted);
}

}  // namespace

TEST_CASE("two processes on one SQLite file together admit the ramp's share") {
  testing::TempDir dir;
  CheckSharedRamp(OpenSqlite, dir.Path("keel.db"));
}

TEST_CASE("two processes on one PostgreSQL database together admit the ramp's share") {
  auto url = test::FreshPgDatabase("ramp_share");
  if (!url) {
    MESSAGE("no PostgreSQL server for the tests: skipped");
    return;
  }
  CheckSharedRamp(OpenPostgres, *url);
}

}  // namespace keel
