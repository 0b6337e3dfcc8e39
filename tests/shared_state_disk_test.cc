// The state a SQLite store shares between processes — circuit breakers
// (Store::UpdateBreaker, the `breakers` row with its stats_json) and
// provider concurrency lanes (Store::HoldSlots, the `lanes` rows) — when the
// disk fills (SQLITE_FULL through FaultVfs, and a real full tmpfs) or
// another process (the sqlite3 shell) holds the write lock: the call fails
// with an error naming the database file and the cause, the rows stay as
// they were, the breaker registry and the provider gate go on with this
// process's own state, and once the cause is gone everything is shared
// again.
//
// The store and the lock holder are real; the gate's fallback periods run on
// a fake clock.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "engine/breaker_registry.h"
#include "engine/fake_clock.h"
#include "engine/store_quota_source.h"
#include "nodes/provider_gate.h"
#include "store/sqlite/sqlite_store.h"
#include "tests/sqlite_test_util.h"
#include "tests/support/fault_vfs.h"
#include "tests/support/files.h"
#include "tests/support/subprocess.h"
#include "tests/support/tmpfs.h"

namespace keel {
namespace {

using testing::FaultOp;
using testing::FaultVfs;
using testing::RawDb;
using testing::ScratchDir;
using testing::Tmpfs;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr int kTimeoutS = 60;
constexpr char kBreaker[] = "provider:p";
constexpr char kLane[] = "provider:p:concurrency";

FaultVfs& Vfs() {
  static FaultVfs vfs("keel-shared-state-disk");
  return vfs;
}

// Every case starts with no plan and leaves none behind. For the test's
// thread.
struct CleanVfs {
  CleanVfs() { Vfs().ClearAll(); }
  ~CleanVfs() { Vfs().ClearAll(); }
};

std::unique_ptr<SqliteStore> Open(const std::string& path, const std::string& vfs,
                                  double busy_timeout = 1) {
  SqliteStoreOptions options;
  options.vfs = vfs;
  options.busy_timeout = busy_timeout;
  options.stall_timeout = 30;
  auto store = SqliteStore::Open(path, options);
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return std::move(store).value();
}

bool Has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// Breaker `kBreaker`'s whole row, every column, as read behind the store's back.
std::string RawBreaker(const std::string& path) {
  return RawDb(path).Text(
      "SELECT quote(state) || quote(failures) || quote(probes_out) || quote(successes) || "
      "quote(opened_at) || quote(cooldown) || quote(probes_json) || quote(calls) || "
      "quote(failed) || quote(window_json) || quote(config_json) || quote(stats_json) || "
      "quote(updated_at) FROM breakers WHERE key = 'provider:p'");
}

// Every lane row, as read behind the store's back.
std::string Lanes(const std::string& path) {
  return RawDb(path).Text(
      "SELECT group_concat(key || '/' || holder || '=' || held, ' ') FROM "
      "(SELECT * FROM lanes ORDER BY key, holder)");
}

// A failed call and a stats_json change: what one breaker update writes.
void CountFailure(BreakerSnapshot& s) {
  ++s.calls;
  ++s.failed;
  ++s.consecutive_failures;
  ++s.timeouts;
  s.last_failure_at += 1;
}

int Admitted(std::atomic<int>* admitted) { return admitted->load(); }

}  // namespace

TEST_CASE("a breaker update on a full disk names the file and the cause and changes nothing" *
          doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = Open(path, Vfs().name());
  REQUIRE(store->UpdateBreaker(kBreaker, CountFailure).ok());
  const std::string before = RawBreaker(path);
  REQUIRE_FALSE(before.empty());

  Vfs().FailAlways(FaultOp::kWrite, SQLITE_FULL);
  int calls = 0;
  auto full = store->UpdateBreaker(kBreaker, [&calls](BreakerSnapshot& s) {
    ++calls;
    CountFailure(s);
  });
  REQUIRE_FALSE(full.ok());
  const std::string message = full.status().message();
  CAPTURE(message);
  CHECK(Has(message, path));
  CHECK(Has(message, "full"));
  CHECK(Has(message, kBreaker));
  CHECK(calls >= 1);
  CHECK(RawBreaker(path) == before);

  // The registry keeps the breaker in this process meanwhile: no crash, no
  // hang, and the outcome still counts here.
  BreakerRegistry registry(store.get());
  BreakerConfig config;
  config.key = kBreaker;
  const double now = 1.7e9;
  auto admitted = registry.Admit(config, now);
  CHECK(admitted.admission == Admission::kAllowed);
  registry.Record(config, CallOutcome(false, 0.1, false), admitted.probe, now);
  CHECK(RawBreaker(path) == before);

  Vfs().Clear(FaultOp::kWrite);
  auto freed = store->UpdateBreaker(kBreaker, CountFailure);
  REQUIRE_MESSAGE(freed.ok(), freed.status().ToString());
  CHECK(freed->calls == 2);  // the failed update left nothing behind
  CHECK(freed->failed == 2);
  CHECK(freed->timeouts == 2);
  CHECK(RawBreaker(path) != before);
  auto listed = store->ListBreakers();
  REQUIRE(listed.ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->at(0).snapshot.calls == 2);
}

TEST_CASE("breaker updates on a real full tmpfs fail cleanly and resume once space frees" *
          doctest::timeout(kTimeoutS)) {
  KEEL_TMPFS_OR_SKIP(fs, "2m");
  const std::string path = fs->Path("keel.db");
  auto store = Open(path, "");
  REQUIRE(store->UpdateBreaker(kBreaker, CountFailure).ok());
  REQUIRE(fs->Fill());
  // Each update grows the window kept in the row; the log has no room left
  // to grow into, so one soon fails.
  int64_t committed = 1;
  Status failure;
  for (int i = 0; i < 5000 && failure.ok(); ++i) {
    auto updated = store->UpdateBreaker(kBreaker, [](BreakerSnapshot& s) {
      CountFailure(s);
      for (int k = 0; k < 20; ++k)
        s.recent.push_back(WindowCall{s.last_failure_at, WindowCall::kFailed});
    });
    if (updated.ok()) {
      committed = updated->calls;
    } else {
      failure = updated.status();
    }
  }
  REQUIRE_MESSAGE(!failure.ok(), "the disk never filled");
  MESSAGE(committed << " updates committed before: " << failure.message());
  CHECK(Has(failure.message(), path));
  CHECK(Has(failure.message(), "full"));
  // What is durable is the last update that said so, whole.
  CHECK(RawDb(path).Int("SELECT calls FROM breakers WHERE key = 'provider:p'") == committed);
  CHECK(RawDb(path).Int("SELECT json_extract(stats_json, '$.timeouts') FROM breakers") ==
        committed);

  fs->Free();
  auto freed = store->UpdateBreaker(kBreaker, CountFailure);
  REQUIRE_MESSAGE(freed.ok(), freed.status().ToString());
  CHECK(freed->calls == committed + 1);
  store.reset();
  CHECK(RawDb(path).Text("PRAGMA integrity_check") == "ok");
}

TEST_CASE(
    "slots held on a full disk: refused, the lanes unchanged, the gate falls back and "
    "shares again once space frees" *
    doctest::timeout(kTimeoutS)) {
  CleanVfs clean;
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  auto store = Open(path, Vfs().name());
  auto other = store->HoldSlots(kLane, "other", 1, 3, 30, 1.7e9);
  REQUIRE(other.ok());
  const std::string before = Lanes(path);

  Vfs().FailAlways(FaultOp::kWrite, SQLITE_FULL);
  auto full = store->HoldSlots(kLane, "me", 2, 3, 30, 1.7e9);
  REQUIRE_FALSE(full.ok());
  const std::string message = full.status().message();
  CAPTURE(message);
  CHECK(Has(message, path));
  CHECK(Has(message, "full"));
  CHECK(Has(message, kLane));
  // Asking again later may help: not a permanent refusal.
  CHECK(full.status().kind() == ErrorKind::kTransient);
  CHECK_FALSE(store->HoldSlots(kLane, "other", 0, 3, 30, 1.7e9).ok());
  CHECK(Lanes(path) == before);

  // A gate on the same store: it cannot hold slots, so it keeps to this
  // process's own limit (2) and says why, once.
  FakeClock clock;
  auto source = std::make_shared<StoreQuotaSource>(&clock);
  ScopedQuotaStore attached(source.get(), store.get());
  ProviderGate gate(&clock, GateLimits{2, 0, 0}, SharedQuota{source, "provider:p"});
  std::atomic<int> admitted{0};
  for (int i = 0; i < 3; ++i) {
    gate.Acquire(0, nullptr, 0, [&admitted](Status s) {
      if (s.ok()) ++admitted;
    });
  }
  REQUIRE(testing::WaitUntil([&] { return Admitted(&admitted) == 2; }, 10s));
  const std::string warning = gate.TakeWarning();
  CAPTURE(warning);
  CHECK(Has(warning, "concurrency limit provider:p:concurrency is not shared"));
  CHECK(Has(warning, path));
  CHECK(Has(warning, "full"));
  CHECK(Has(warning, "asks again in 10 s"));
  CHECK(gate.TakeWarning().empty());
  CHECK(Lanes(path) == before);

  // Space frees: after the fallback period the gate holds its slots in the
  // database again, next to the other holder's.
  Vfs().Clear(FaultOp::kWrite);
  gate.Release(0, 0);
  REQUIRE(testing::WaitUntil([&] { return Admitted(&admitted) == 3; }, 10s));
  gate.Release(0, 0);
  gate.Release(0, 0);
  clock.Advance(kQuotaFallbackSeconds + 1);
  gate.Acquire(0, nullptr, 0, [&admitted](Status s) {
    if (s.ok()) ++admitted;
  });
  REQUIRE(testing::WaitUntil(
      [&] {
        return RawDb(path).Int("SELECT count(*) FROM lanes WHERE holder <> 'other' AND held = 1") ==
               1;
      },
      10s));
  REQUIRE(testing::WaitUntil([&] { return Admitted(&admitted) == 4; }, 10s));
  CHECK(RawDb(path).Int("SELECT held FROM lanes WHERE holder = 'other'") == 1);
}

TEST_CASE(
    "slots held while another process holds the write lock: refused after busy_timeout "
    "naming the lock; the gate keeps to its own limit" *
    doctest::timeout(kTimeoutS)) {
  ScratchDir dir;
  const std::string path = dir.Path("keel.db");
  constexpr double kBusy = 3;  // longer than the gate waits for an answer
  auto store = Open(path, "", kBusy);
  REQUIRE(store->HoldSlots(kLane, "other", 1, 3, 30, 1.7e9).ok());
  const std::string before = Lanes(path);

  testing::SpawnOptions options;
  const std::string signal = dir.Path("locked");
  options.args = {"-cmd", "BEGIN IMMEDIATE;", "-cmd", ".shell touch '" + signal + "'",
                  "-cmd", ".shell sleep 8",   path,   "COMMIT;"};
  testing::Subprocess holder("/usr/bin/sqlite3", options);
  REQUIRE(testing::WaitUntil([&] { return testing::FileExists(signal) || holder.Exited(); }, 10s));
  REQUIRE_MESSAGE(testing::FileExists(signal), holder.Stderr());

  const auto asked = SteadyClock::now();
  auto locked = store->HoldSlots(kLane, "me", 2, 3, 30, 1.7e9);
  const double waited = std::chrono::duration<double>(SteadyClock::now() - asked).count();
  MESSAGE("refused after " << waited << " s");
  REQUIRE_FALSE(locked.ok());
  CAPTURE(locked.status().message());
  CHECK(Has(locked.status().message(), path));
  CHECK(Has(locked.status().message(), "locked"));
  CHECK(locked.status().kind() == ErrorKind::kTransient);
  CHECK(waited >= kBusy - 0.1);
  CHECK(waited < kBusy + 2);

  // The gate does not wait for the database past kQuotaAnswerTimeout: it
  // falls back to the process's own limit, with a warning.
  auto source = std::make_shared<StoreQuotaSource>(SystemClock());
  ScopedQuotaStore attached(source.get(), store.get());
  ProviderGate gate(SystemClock(), GateLimits{2, 0, 0}, SharedQuota{source, "provider:p"});
  std::atomic<int> admitted{0};
  const auto started = SteadyClock::now();
  for (int i = 0; i < 3; ++i) {
    gate.Acquire(0, nullptr, 0, [&admitted](Status s) {
      if (s.ok()) ++admitted;
    });
  }
  REQUIRE(testing::WaitUntil([&] { return Admitted(&admitted) == 2; }, 10s));
  const double fell_back = std::chrono::duration<double>(SteadyClock::now() - started).count();
  MESSAGE("the gate fell back after " << fell_back << " s");
  CHECK(fell_back >= kQuotaAnswerTimeout - 0.1);
  CHECK(fell_back < kBusy);
  CHECK(Admitted(&admitted) == 2);
  const std::string warning = gate.TakeWarning();
  CAPTURE(warning);
  CHECK(Has(warning, "is not shared for now (the database did not answer within 2 s)"));
  gate.Release(0, 0);
  CHECK(testing::WaitUntil([&] { return Admitted(&admitted) == 3; }, 10s));
  gate.Release(0, 0);
  gate.Release(0, 0);
  testing::ExitInfo held = holder.Wait(30s);
  CHECK_MESSAGE(held.exit_code == 0, held.Describe());
  CHECK(Lanes(path) == before);
}

}  // namespace keel
