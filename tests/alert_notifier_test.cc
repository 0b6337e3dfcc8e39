// AlertNotifier and the SQLite outbox behind it: which alerts are made, that
// a rescan never repeats one, retries with backoff while the webhook is
// down or failing, leases between two senders, and rows left by a sender
// that stopped before delivering. Time is a FakeClock; the webhook is a
// real HTTP server on loopback.

#include "service/alert_notifier.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "engine/fake_clock.h"
#include "service/alert_payload.h"
#include "tests/sqlite_test_util.h"
#include "tests/support/webhook_receiver.h"

namespace keel {
namespace {

using testing::FreeLoopbackPort;
using testing::MakeRun;
using testing::OpenStore;
using testing::RawDb;
using testing::ScratchDir;
using testing::WebhookReceiver;

void FinishedRun(Store* store, const std::string& id, RunStatus status, double at) {
  REQUIRE(store->CreateRun(MakeRun(id, at - 1)).ok());
  store->FinishRun(id, status, status == RunStatus::kSucceeded ? "" : "node 'b' failed", at);
  REQUIRE(store->Flush().ok());
}

void OpenBreaker(Store* store, const std::string& key, double at) {
  auto opened = store->UpdateBreaker(key, [&](BreakerSnapshot& s) {
    s.state = BreakerState::kOpen;
    s.opened_at = at;
    s.cooldown = 30;
  });
  REQUIRE(opened.ok());
}

int Count(const std::vector<std::string>& bodies, const std::string& part) {
  return static_cast<int>(std::count_if(bodies.begin(), bodies.end(), [&](const std::string& b) {
    return b.find(part) != std::string::npos;
  }));
}

service::AlertOptions Options(const std::string& url) {
  service::AlertOptions options;
  options.url = url;
  options.timeout_s = 2;
  options.backoff_base_s = 4;
  options.backoff_max_s = 60;
  return options;
}

TEST_CASE("a failed run, a degraded run and an opened breaker each alert once" *
          doctest::timeout(60)) {
  ScratchDir dir;
  FakeClock clock;
  auto store = OpenStore(dir.Path("keel.db"));
  WebhookReceiver hook;
  service::AlertNotifier notifier(store.get(), &clock, Options(hook.Url()));

  // History from before alerting started stays quiet.
  FinishedRun(store.get(), "old-failed", RunStatus::kFailed, clock.WallNow() - 10);
  OpenBreaker(store.get(), "old-breaker", clock.WallNow() - 5);
  REQUIRE(notifier.Scan().ok());

  clock.Advance(1);
  FinishedRun(store.get(), "r-failed", RunStatus::kFailed, clock.WallNow());
  FinishedRun(store.get(), "r-degraded", RunStatus::kDegraded, clock.WallNow());
  FinishedRun(store.get(), "r-ok", RunStatus::kSucceeded, clock.WallNow());
  OpenBreaker(store.get(), "openai/gpt", clock.WallNow());

  auto added = notifier.Scan();
  REQUIRE(added.ok());
  CHECK(*added == 3);
  clock.Advance(1);
  CHECK(*notifier.Scan() == 0);  // the overlap reads them again; the keys dedupe
  auto sent = notifier.SendDue();
  REQUIRE(sent.ok());
  CHECK(*sent == 3);
  CHECK(*notifier.SendDue() == 0);
  clock.Advance(200);  // past the overlap
  CHECK(*notifier.Scan() == 0);
  CHECK(*notifier.SendDue() == 0);

  auto bodies = hook.bodies();
  REQUIRE(bodies.size() == 3);
  CHECK(Count(bodies, R"("kind":"run_failed")") == 1);
  CHECK(Count(bodies, R"("run_id":"r-failed")") == 1);
  CHECK(Count(bodies, R"("kind":"run_degraded")") == 1);
  CHECK(Count(bodies, R"("kind":"breaker_open")") == 1);
  CHECK(Count(bodies, R"("breaker":"openai/gpt")") == 1);
  CHECK(Count(bodies, R"("error":"node 'b' failed")") == 2);
  CHECK(Count(bodies, R"("dedupe_id":"run:r-failed:failed:e1")") == 1);
  CHECK(Count(bodies, "old-") == 0);

  // Delivered rows are dropped after a week.
  RawDb outbox(dir.Path("keel.db"));
  CHECK(outbox.Int("SELECT COUNT(*) FROM alert_outbox") == 3);
  clock.Advance(8 * 86400);
  CHECK(*notifier.Scan() == 0);
  CHECK(outbox.Int("SELECT COUNT(*) FROM alert_outbox") == 0);

  // A run resumed and failing again is a new alert (its epoch moved on).
  RawDb raw(dir.Path("keel.db"));
  raw.Exec("UPDATE runs SET epoch = 2, finished_at = " + std::to_string(clock.WallNow()) +
           " WHERE id = 'r-failed'");
  CHECK(*notifier.Scan() == 1);
}

TEST_CASE("a breaker that opens again alerts again" * doctest::timeout(60)) {
  ScratchDir dir;
  FakeClock clock;
  auto store = OpenStore(dir.Path("keel.db"));
  service::AlertNotifier notifier(store.get(), &clock, Options("http://127.0.0.1:9/"));
  REQUIRE(notifier.Scan().ok());
  clock.Advance(1);
  OpenBreaker(store.get(), "k", clock.WallNow());
  CHECK(*notifier.Scan() == 1);
  clock.Advance(40);
  OpenBreaker(store.get(), "k", clock.WallNow());
  CHECK(*notifier.Scan() == 1);
  CHECK(*notifier.Scan() == 0);
}

TEST_CASE("a webhook refusing, then failing, then answering gets every alert once" *
          doctest::timeout(60)) {
  ScratchDir dir;
  FakeClock clock;
  auto store = OpenStore(dir.Path("keel.db"));
  RawDb raw(dir.Path("keel.db"));
  const int port = FreeLoopbackPort();
  service::AlertNotifier notifier(
      store.get(), &clock,
      Options("http://127.0.0.1:" + std::to_string(port) + "/hook"));
  REQUIRE(notifier.Scan().ok());
  clock.Advance(1);
  FinishedRun(store.get(), "a", RunStatus::kFailed, clock.WallNow());
  FinishedRun(store.get(), "b", RunStatus::kDegraded, clock.WallNow());
  REQUIRE(*notifier.Scan() == 2);

  // Nobody listens: connection refused; each row waits base * [0.5, 1].
  double t0 = clock.WallNow();
  CHECK(*notifier.SendDue() == 0);
  CHECK(raw.Int("SELECT COUNT(*) FROM alert_outbox WHERE attempts = 1 AND delivered_at = 0") == 2);
  double first_wait = std::stod(raw.Text("SELECT MIN(next_at) FROM alert_outbox")) - t0;
  CHECK(first_wait >= 2);
  CHECK(first_wait <= 4);
  CHECK(raw.Text("SELECT last_error FROM alert_outbox LIMIT 1").find("no answer") == 0);
  CHECK(*notifier.SendDue() == 0);  // not due yet: nothing posted
  CHECK(raw.Int("SELECT MAX(attempts) FROM alert_outbox") == 1);

  // The webhook is up but answers 500: the second wait doubles.
  WebhookReceiver hook(port);
  hook.Answer(500);
  clock.Advance(4);
  double t1 = clock.WallNow();
  CHECK(*notifier.SendDue() == 0);
  CHECK(hook.bodies().size() == 2);
  CHECK(raw.Text("SELECT last_error FROM alert_outbox LIMIT 1") == "HTTP 500");
  double second_wait = std::stod(raw.Text("SELECT MIN(next_at) FROM alert_outbox")) - t1;
  CHECK(second_wait >= 4);
  CHECK(second_wait <= 8);

  // A 4xx is retried too.
  hook.Answer(404);
  clock.Advance(8);
  CHECK(*notifier.SendDue() == 0);
  CHECK(raw.Int("SELECT MIN(attempts) FROM alert_outbox") == 3);

  hook.Answer(200);
  clock.Advance(16);
  CHECK(*notifier.SendDue() == 2);
  clock.Advance(600);
  CHECK(*notifier.SendDue() == 0);
  auto bodies = hook.bodies();
  CHECK(bodies.size() == 6);  // 2 answered 500, 2 answered 404, 2 delivered
  CHECK(Count(bodies, R"("run_id":"a")") == 3);
  CHECK(Count(bodies, R"("attempt":4)") == 2);
  CHECK(raw.Int("SELECT COUNT(*) FROM alert_outbox WHERE delivered_at > 0") == 2);
}

TEST_CASE("backoff doubles up to its maximum, with jitter") {
  FakeClock clock;
  service::AlertOptions options = Options("http://127.0.0.1:9/");
  service::AlertNotifier notifier(nullptr, &clock, options);
  for (int attempt = 1; attempt <= 10; ++attempt) {
    double full = std::min(options.backoff_base_s * (1 << (attempt - 1)), options.backoff_max_s);
    double delay = notifier.Backoff(attempt);
    CHECK(delay >= full * 0.5);
    CHECK(delay <= full);
  }
}

TEST_CASE("a leased row is not sent by another sender until the lease ends" *
          doctest::timeout(60)) {
  ScratchDir dir;
  FakeClock clock;
  auto store_a = OpenStore(dir.Path("keel.db"));
  auto store_b = OpenStore(dir.Path("keel.db"));
  WebhookReceiver hook;
  service::AlertOptions options = Options(hook.Url());
  options.lease_s = 30;
  service::AlertNotifier b(store_b.get(), &clock, options);
  REQUIRE(b.Scan().ok());
  clock.Advance(1);
  FinishedRun(store_a.get(), "r", RunStatus::kFailed, clock.WallNow());
  REQUIRE(*b.Scan() == 1);

  // Sender A claims it and dies before posting.
  auto claimed = store_a->ClaimAlerts("a", clock.WallNow(), 30, 10);
  REQUIRE(claimed.ok());
  REQUIRE(claimed->size() == 1);
  CHECK(store_b->ClaimAlerts("c", clock.WallNow(), 30, 10)->empty());
  CHECK(*b.SendDue() == 0);
  CHECK(hook.bodies().empty());

  clock.Advance(31);
  CHECK(*b.SendDue() == 1);
  CHECK(hook.bodies().size() == 1);
  // A's late completion is refused: it no longer holds the row.
  auto late = store_a->CompleteAlert((*claimed)[0].id, "a", true, clock.WallNow(), 0, "");
  REQUIRE(late.ok());
  CHECK(!*late);
}

TEST_CASE("alerts added by a sender that stopped are delivered by the next one" *
          doctest::timeout(60)) {
  ScratchDir dir;
  FakeClock clock;
  const std::string db = dir.Path("keel.db");
  const int port = FreeLoopbackPort();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
  {
    auto store = OpenStore(db);
    service::AlertNotifier first(store.get(), &clock, Options(url));
    REQUIRE(first.Scan().ok());
    clock.Advance(1);
    FinishedRun(store.get(), "r", RunStatus::kFailed, clock.WallNow());
    REQUIRE(*first.Scan() == 1);
    CHECK(*first.SendDue() == 0);  // the webhook is down
  }
  WebhookReceiver hook(port);
  auto store = OpenStore(db);
  service::AlertNotifier second(store.get(), &clock, Options(url));
  clock.Advance(5);
  CHECK(*second.Scan() == 0);
  CHECK(*second.SendDue() == 1);
  REQUIRE(hook.bodies().size() == 1);
  CHECK(Count(hook.bodies(), R"("run_id":"r")") == 1);
}

TEST_CASE("the payload carries the alert and nothing else") {
  Store::AlertRow row;
  row.kind = "run_failed";
  row.dedupe_key = "run:r-1:failed:e1";
  row.run_id = "r-1";
  row.workflow = "wf";
  row.status = "failed";
  row.error = "boom";
  row.at = 1.7e9;
  CHECK(service::AlertPayloadJson(row) ==
        R"({"kind":"run_failed","dedupe_id":"run:r-1:failed:e1","time":"2023-11-14T22:13:20.000Z",)"
        R"("run_id":"r-1","workflow":"wf","status":"failed","error":"boom","breaker":null,)"
        R"("attempt":1})");
}

TEST_CASE("webhook URLs are checked") {
  std::string base, path;
  CHECK(service::ParseWebhookUrl("http://h:8080/a/b?c=1", &base, &path).ok());
  CHECK(base == "http://h:8080");
  CHECK(path == "/a/b?c=1");
  CHECK(service::ParseWebhookUrl("https://hooks.example.com", &base, &path).ok());
  CHECK(path == "/");
  CHECK(!service::ParseWebhookUrl("ftp://h/x", &base, &path).ok());
  CHECK(!service::ParseWebhookUrl("h/x", &base, &path).ok());
  CHECK(!service::ParseWebhookUrl("http:///x", &base, &path).ok());
  CHECK(service::ParseWebhookUrl("http://u:p@h/x", &base, &path).message().find("--notify") == 0);
}

}  // namespace
}  // namespace keel
