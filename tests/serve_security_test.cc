// `keel serve`'s guard and health through the real binary: the flags it
// refuses, the bearer token (/livez and /readyz open), cross-site browser
// writes, oversized bodies, bad paths, garbage bytes, a slowloris half
// request held open while other requests are answered, /readyz 503 when
// the database is locked by another process or read-only, provider keys in
// no response, and a clean exit on SIGTERM. The server stays up through
// all of it.

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/support/json.h"
#include "tests/support/sandbox.h"
#include "tests/support/serve_process.h"
#include "tests/support/sqlite_db.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

const char* kTwoSteps = R"(
local keel = require "keel"
return keel.workflow "two" {
  keel.fn "a" { run = function() return 1 end },
  keel.fn "b" { after = { "a" }, run = function(ctx) return ctx.deps.a + 1 end },
}
)";

bool Alive(ServeProcess& serve) {
  auto reply = serve.Client()->Get("/livez");
  return reply && reply->status == 200;
}

}  // namespace

TEST_CASE("keel serve refuses bad flags with exit 2 naming the flag" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  struct Case {
    std::vector<std::string> args;
    std::string flag;
  };
  std::vector<Case> cases = {
      {{"--listen", "0.0.0.0:0"}, "--token-env"},
      {{"--listen", "127.0.0.1:0", "--token-env", "KEEL_TEST_UNSET_TOKEN"}, "--token-env"},
      {{"--listen", "127.0.0.1"}, "--listen"},
      {{"--listen", "127.0.0.1:99999"}, "--listen"},
      {{"--workflows", box.Path("missing")}, "--workflows"},
      {{"--resume-grace", "soon"}, "--resume-grace"},
      {{"--max-runs", "0"}, "--max-runs"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"serve"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    CAPTURE(c.flag);
    ExitInfo r = box.KeelDb(args, std::chrono::seconds(20));
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.flag) != std::string::npos);
  }
}

TEST_CASE("a token guards every path but /livez and /readyz, and is never echoed" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  const std::string token = "s3cret-token-value";
  ServeProcess serve(KEEL_BIN, box.dir(), box.db(), {"--token-env", "KEEL_TEST_TOKEN"},
                     {{"KEEL_TEST_TOKEN", token}});
  auto client = serve.Client();
  for (const char* open : {"/livez", "/readyz"}) {
    auto reply = client->Get(open);
    REQUIRE(reply);
    CHECK(reply->status == 200);
  }
  auto none = client->Get("/api/v1/runs");
  REQUIRE(none);
  CHECK(none->status == 401);
  CHECK(Json::Parse(none->body)["error"].IsString());
  auto wrong = client->Get("/api/v1/runs", {{"Authorization", "Bearer s3cret-token-valuX"}});
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  auto longer = client->Get("/api/v1/runs", {{"Authorization", "Bearer " + token + "x"}});
  REQUIRE(longer);
  CHECK(longer->status == 401);
  auto basic = client->Get("/api/v1/runs", {{"Authorization", "Basic " + token}});
  REQUIRE(basic);
  CHECK(basic->status == 401);
  // Unknown paths too: nothing is told before the token.
  auto unknown = client->Get("/secret-place");
  REQUIRE(unknown);
  CHECK(unknown->status == 401);
  for (const auto* reply : {&none, &wrong, &longer, &basic, &unknown}) {
    CHECK((*reply)->body.find(token) == std::string::npos);
  }
  auto right = client->Get("/api/v1/runs", {{"Authorization", "Bearer " + token}});
  REQUIRE(right);
  CHECK(right->status == 200);
  CHECK(right->body == "[]");
}

TEST_CASE("cross-site browser writes are refused; same-origin JSON goes through" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto client = serve.Client();
  const std::string self = "http://127.0.0.1:" + std::to_string(serve.port());
  auto evil = client->Post("/api/v1/breakers/reset", {{"Origin", "http://evil.example"}}, "",
                           "application/json");
  REQUIRE(evil);
  CHECK(evil->status == 403);
  auto other_port =
      client->Post("/api/v1/breakers/reset", {{"Origin", "http://127.0.0.1:1"}}, "",
                   "application/json");
  REQUIRE(other_port);
  CHECK(other_port->status == 403);
  auto fetch_site = client->Post("/api/v1/breakers/reset", {{"Sec-Fetch-Site", "cross-site"}},
                                 "", "application/json");
  REQUIRE(fetch_site);
  CHECK(fetch_site->status == 403);
  // A form post (no preflight in a browser) cannot carry JSON's content type.
  auto form = client->Post("/api/v1/breakers/reset", "a=1", "application/x-www-form-urlencoded");
  REQUIRE(form);
  CHECK(form->status == 415);
  auto same = client->Post("/api/v1/breakers/reset", {{"Origin", self}}, "{}",
                           "application/json");
  REQUIRE(same);
  CHECK(same->status == 200);
}

TEST_CASE("garbage requests get 4xx JSON and the server stays up" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto client = serve.Client();

  std::string big(2 << 20, 'x');
  auto huge = client->Post("/api/v1/breakers/reset", big, "application/json");
  REQUIRE(huge);
  CHECK(huge->status == 413);
  CHECK(Json::Parse(huge->body)["error"].Str().find("too large") != std::string::npos);
  CHECK(Alive(serve));

  const int port = serve.port();
  auto status_of = [&](const std::string& request) {
    std::string reply = RawExchange(port, request);
    return reply.size() > 12 ? std::stoi(reply.substr(9, 3)) : 0;
  };
  CHECK(status_of("GET /api/v1/runs/../runs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 400);
  CHECK(status_of("GET /api/v1/%2e%2e/v1/runs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 400);
  CHECK(status_of("GET /api/v1/runs/a%00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 400);
  CHECK(status_of("GET /" + std::string(10 * 1024, 'a') + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") / 100 ==
        4);
  CHECK(status_of("garbage\r\n\r\n") == 400);
  // Binary garbage (a TLS hello) is answered 400 or the connection closed.
  int tls = status_of(std::string("\x16\x03\x01\x02\x00\x01\xfc\x03\x03\r\n\r\n", 13));
  CHECK((tls == 0 || tls == 400));
  CHECK(status_of(std::string("GET /\0 HTTP/1.1\r\n\r\n", 19)) / 100 == 4);
  CHECK(status_of("POST /api/v1/breakers/reset HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: "
                  "99999999999\r\nContent-Type: application/json\r\n\r\n") == 413);
  std::string json_error = RawExchange(port, "BREW /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  CHECK(json_error.find("{\"error\":") != std::string::npos);
  CHECK(Alive(serve));
}

TEST_CASE("a slowloris half request holds no one else up" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  // Several connections each send half a request and then nothing.
  // The server drops each after its read timeout (5 s), before the
  // client would give up (15 s).
  std::vector<std::thread> slow;
  std::vector<double> held(8);
  for (int i = 0; i < 8; ++i) {
    slow.emplace_back([&, i] {
      auto begin = std::chrono::steady_clock::now();
      RawExchange(serve.port(), "GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ", 15000);
      held[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) REQUIRE(Alive(serve));
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(seconds < 5);
  for (auto& t : slow) t.join();
  for (double seconds_held : held) CHECK(seconds_held < 12);
  CHECK(Alive(serve));
}

TEST_CASE("/readyz is 503 with the reason while the database is locked or read-only" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  auto client = serve.Client();
  auto ready = client->Get("/readyz");
  REQUIRE(ready);
  CHECK(ready->status == 200);

  {
    SqliteDb other(box.db(), false);
    other.Exec("BEGIN EXCLUSIVE");
    auto locked = client->Get("/readyz");
    REQUIRE(locked);
    CHECK(locked->status == 503);
    CHECK(Json::Parse(locked->body)["error"].Str().find("locked") != std::string::npos);
    auto live = client->Get("/livez");
    REQUIRE(live);
    CHECK(live->status == 200);
    other.Exec("ROLLBACK");
  }
  auto again = client->Get("/readyz");
  REQUIRE(again);
  CHECK(again->status == 200);

  if (geteuid() == 0) {
    MESSAGE("running as root, which writes read-only files: the read-only case is skipped");
  } else {
    REQUIRE(chmod(box.db().c_str(), 0444) == 0);
    auto read_only = client->Get("/readyz");
    REQUIRE(read_only);
    CHECK(read_only->status == 503);
    CHECK(Json::Parse(read_only->body)["error"].Str().find("read-only") != std::string::npos);
    REQUIRE(chmod(box.db().c_str(), 0644) == 0);
  }

  // An older schema: the service opened it current, someone set it back.
  {
    SqliteDb other(box.db(), false);
    other.Exec("PRAGMA user_version = 1");
  }
  auto older = client->Get("/readyz");
  REQUIRE(older);
  CHECK(older->status == 503);
  CHECK(Json::Parse(older->body)["error"].Str().find("older schema") != std::string::npos);
}

TEST_CASE("provider keys appear in no response" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  const std::string key = "sk-keel-test-DO-NOT-SHOW-1234";
  box.Write("keys.lua", R"(
local keel = require "keel"
keel.provider "p" {
  kind = "openai", base_url = "http://127.0.0.1:9/v1", model = "m",
  api_key_env = "KEEL_TEST_PROVIDER_KEY",
}
return keel.workflow "keys" {
  keel.agent "ask" { provider = "p", prompt = "hi", retry = { attempts = 1 } },
}
)");
  SpawnOptions run;
  run.args = {"run", "keys.lua", "--db", box.db()};
  run.cwd = box.dir();
  run.env = {{"KEEL_TEST_PROVIDER_KEY", key}, {"KEEL_DB", std::nullopt}};
  ExitInfo ran = RunProcess(KEEL_BIN, run, std::chrono::seconds(90));
  CHECK_MESSAGE(!ran.timed_out, ran.Describe());
  std::string id = RunIdFromStderr(ran.err);
  REQUIRE_MESSAGE(!id.empty(), ran.Describe());

  ServeProcess serve(KEEL_BIN, box.dir(), box.db(), {},
                     {{"KEEL_TEST_PROVIDER_KEY", key}});
  auto client = serve.Client();
  for (const std::string& path : std::vector<std::string>{
           "/api/v1/runs", "/api/v1/runs/" + id, "/api/v1/runs/" + id + "?events=true",
        "/api/v1/runs/" + id + "/events", "/api/v1/runs/" + id + "/graph", "/api/v1/breakers",
           "/livez", "/readyz", "/nothing"}) {
    CAPTURE(path);
    auto reply = client->Get(path);
    REQUIRE(reply);
    CHECK(reply->status < 500);
    CHECK(reply->body.find(key) == std::string::npos);
    for (const auto& [name, value] : reply->headers) CHECK(value.find(key) == std::string::npos);
  }
}

TEST_CASE("SIGTERM stops the server cleanly with exit 0" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  box.Write("two.lua", kTwoSteps);
  ServeProcess serve(KEEL_BIN, box.dir(), box.db());
  // An idle keep-alive connection does not hold the shutdown up for long.
  auto client = serve.Client();
  client->set_keep_alive(true);
  REQUIRE(client->Get("/livez"));
  REQUIRE(kill(serve.process().pid(), SIGTERM) == 0);
  ExitInfo info = serve.process().Wait(std::chrono::seconds(15));
  CHECK_MESSAGE(info.exit_code == 0, info.Describe());
  CHECK(info.err.find("keel serve: stopped") != std::string::npos);
  // The database it made is a keel database the CLI uses.
  CHECK(box.KeelDb({"run", "two.lua"}).exit_code == 0);
}

}  // namespace keel::testing
