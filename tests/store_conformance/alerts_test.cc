// The alerts outbox: ScanAlerts copies runs finished failed or degraded and
// breakers opened since its cursors (history before the first scan never
// alerts; a late write within the overlap is caught; a dedupe key is added
// once), ClaimAlerts leases rows to one sender, CompleteAlert records the
// outcome only for the lease holder.

#include <atomic>
#include <set>
#include <thread>

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

void Finish(Store& store, const std::string& id, RunStatus status, double at) {
  Create(store, id);
  store.FinishRun(id, status, "why " + id, at);
  Flushed(store);
}

void OpenBreaker(Store& store, const std::string& key, double at) {
  REQUIRE(store
              .UpdateBreaker(key,
                             [at](BreakerSnapshot& s) {
                               s.state = BreakerState::kOpen;
                               s.opened_at = at;
                             })
              .ok());
}

TEST_CASE("alerts are scanned once, leased to one sender and completed by it" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Finish(*store, "old", RunStatus::kFailed, 50);
  CHECK(Must(store->ScanAlerts(100, 30)) == 0);  // the first scan: alerting starts now

  Finish(*store, "f1", RunStatus::kFailed, 150);
  Finish(*store, "d1", RunStatus::kDegraded, 160);
  Finish(*store, "ok", RunStatus::kSucceeded, 170);
  Finish(*store, "gone", RunStatus::kCancelled, 171);
  OpenBreaker(*store, "llm", 155);
  auto other = db->OpenSecond();
  CHECK(Must(other->ScanAlerts(200, 30)) == 3);
  CHECK(Must(store->ScanAlerts(210, 30)) == 0);  // each dedupe key once
  // Committed late with an earlier finish time: within the overlap.
  Finish(*store, "late", RunStatus::kFailed, 185);
  CHECK(Must(store->ScanAlerts(220, 30)) == 1);

  auto rows = Must(store->ClaimAlerts("a", 300, 60, 10));
  REQUIRE(rows.size() == 4);
  CHECK(rows[0].kind == "run_failed");
  CHECK(rows[0].run_id == "f1");
  CHECK(rows[0].dedupe_key == "run:f1:failed:e1");
  CHECK(rows[0].workflow == "wf");
  CHECK(rows[0].status == "failed");
  CHECK(rows[0].error == "why f1");
  CHECK(rows[0].at == 150);
  CHECK(rows[0].attempts == 0);
  CHECK(rows[1].kind == "run_degraded");
  CHECK(rows[1].dedupe_key == "run:d1:degraded:e1");
  CHECK(rows[2].kind == "breaker_open");
  CHECK(rows[2].dedupe_key == "breaker:llm:155.000000");
  CHECK(rows[2].breaker_key == "llm");
  CHECK(rows[2].status == "open");
  CHECK(rows[2].run_id.empty());
  CHECK(rows[2].at == 155);
  CHECK(rows[3].run_id == "late");
  std::set<int64_t> ids;
  for (const auto& row : rows) ids.insert(row.id);
  CHECK(ids.size() == 4);

  // Leased: nobody else gets them before the lease ends.
  CHECK(Must(other->ClaimAlerts("b", 310, 60, 10)).empty());
  CHECK_FALSE(Must(other->CompleteAlert(rows[0].id, "b", true, 320, 0, "")));
  CHECK(Must(store->CompleteAlert(rows[0].id, "a", true, 320, 0, "")));
  CHECK(Must(store->CompleteAlert(rows[1].id, "a", false, 320, 400, "HTTP 500")));
  CHECK_FALSE(Must(store->CompleteAlert(rows[0].id, "a", true, 321, 0, "")));  // done already

  // The lease of the other two expired at 360; the failed one is due at 400.
  auto expired = Must(other->ClaimAlerts("b", 370, 60, 10));
  REQUIRE(expired.size() == 2);
  CHECK(expired[0].id == rows[2].id);
  CHECK(expired[1].id == rows[3].id);
  CHECK_FALSE(Must(store->CompleteAlert(rows[2].id, "a", true, 375, 0, "")));  // b holds it now
  auto retried = Must(store->ClaimAlerts("a", 420, 60, 10));
  REQUIRE(retried.size() == 1);
  CHECK(retried[0].id == rows[1].id);
  CHECK(retried[0].attempts == 1);
  CHECK(Must(store->CompleteAlert(retried[0].id, "a", true, 421, 0, "")));
  // Delivered rows are never scanned in again.
  CHECK(Must(store->ScanAlerts(430, 1000)) == 0);
  CHECK(Must(store->ClaimAlerts("c", 1000, 60, 10)).size() == 2);  // rows[2], rows[3] again
}

TEST_CASE("two senders claiming at once never get the same alert" * doctest::timeout(120)) {
  KEEL_FRESH_BACKEND(db);
  auto a = db->Open();
  auto b = db->OpenSecond();
  CHECK(Must(a->ScanAlerts(100, 30)) == 0);
  constexpr int kAlerts = 24;
  for (int i = 0; i < kAlerts; ++i) Finish(*a, "f" + std::to_string(i), RunStatus::kFailed, 101 + i);
  CHECK(Must(b->ScanAlerts(200, 30)) == kAlerts);
  std::vector<int64_t> got_a, got_b;
  std::atomic<int> errors{0};
  auto claim = [&](Store* store, const std::string& owner, std::vector<int64_t>* got) {
    for (;;) {
      auto rows = store->ClaimAlerts(owner, 300, 600, 3);
      if (!rows.ok()) {
        ++errors;
        return;
      }
      if (rows->empty()) return;
      for (const auto& row : *rows) got->push_back(row.id);
    }
  };
  std::thread ta(claim, a.get(), "a", &got_a);
  std::thread tb(claim, b.get(), "b", &got_b);
  ta.join();
  tb.join();
  CHECK(errors == 0);
  std::set<int64_t> all(got_a.begin(), got_a.end());
  all.insert(got_b.begin(), got_b.end());
  CHECK(all.size() == got_a.size() + got_b.size());
  CHECK(all.size() == static_cast<size_t>(kAlerts));
}

}  // namespace
}  // namespace keel::conformance
