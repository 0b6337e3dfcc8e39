// `keel serve --notify URL` and the providers endpoints, through the real
// binary: a webhook receiver gets exactly one alert for a failed run, a
// degraded run and an opened breaker (and none for history from before the
// first start); alerts survive a webhook that refuses, then fails, and a
// kill -9 of the server before delivery; GET /api/v1/providers and POST
// /api/v1/providers/NAME/check probe through `keel doctor`, never showing
// the key.

#include <doctest/doctest.h>
#include <httplib.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "tests/support/json.h"
#include "tests/support/mock_llm_server.h"
#include "tests/support/sandbox.h"
#include "tests/support/sqlite_db.h"
#include "tests/support/subprocess.h"
#include "tests/support/webhook_receiver.h"

namespace keel::testing {
namespace {

constexpr char kFailing[] = R"lua(
local keel = require "keel"
return keel.workflow "failing" {
  keel.fn "boom" { run = function() error("the boom node broke") end },
}
)lua";

constexpr char kDegraded[] = R"lua(
local keel = require "keel"
return keel.workflow "degrading" {
  keel.fn "ok" { run = function() return 1 end },
  keel.fn "extra" { optional = true, run = function() error("optional part broke") end },
}
)lua";

std::string ReadExample(const std::string& name) {
  std::ifstream in(std::string(KEEL_SOURCE_DIR) + "/examples/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool WaitFor(const std::function<bool()>& done, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return done();
}

int Count(const std::vector<std::string>& bodies, const std::string& part) {
  int n = 0;
  for (const std::string& b : bodies) n += b.find(part) != std::string::npos;
  return n;
}

// `keel serve` on a free port over the sandbox's database.
class Server {
 public:
  Server(const Sandbox& box, std::vector<std::string> extra,
         std::vector<std::pair<std::string, std::optional<std::string>>> env = {}) {
    SpawnOptions options;
    options.args = {"serve", "--listen", "127.0.0.1:0", "--db", box.db(), "--workflows",
                    box.dir()};
    options.args.insert(options.args.end(), extra.begin(), extra.end());
    options.cwd = box.dir();
    options.env = std::move(env);
    process_ = std::make_unique<Subprocess>(KEEL_BIN, options);
    REQUIRE_MESSAGE(process_->WaitForStderr("listening on http://", std::chrono::seconds(20)),
                    process_->Stderr());
    std::string err = process_->Stderr();
    size_t at = err.find("listening on http://127.0.0.1:") + 30;
    port_ = std::stoi(err.substr(at));
  }
  httplib::Client Client() const {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(std::chrono::seconds(60));
    return client;
  }
  Subprocess& process() { return *process_; }

 private:
  std::unique_ptr<Subprocess> process_;
  int port_ = 0;
};

TEST_CASE("keel serve --notify posts one alert per failed run, degraded run and opened breaker" *
          doctest::timeout(120)) {
  Sandbox box(KEEL_BIN);
  box.Write("failing.lua", kFailing);
  box.Write("degraded.lua", kDegraded);
  box.Write("breaker.lua", ReadExample("breaker_fallback.lua"));
  WebhookReceiver hook;

  // History from before the first start never alerts.
  CHECK(box.KeelDb({"run", "failing.lua"}).exit_code == 1);
  {
    Server first(box, {"--notify", hook.Url()});
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    first.process().Kill();
  }
  CHECK(hook.bodies().empty());

  Server server(box, {"--notify", hook.Url()});
  CHECK(box.KeelDb({"run", "failing.lua"}).exit_code == 1);
  CHECK(box.KeelDb({"run", "degraded.lua"}).exit_code == 3);
  ExitInfo breaker = box.KeelDb({"run", "breaker.lua"});
  CHECK_MESSAGE(breaker.exit_code == 0, breaker.Describe());
  REQUIRE_MESSAGE(WaitFor([&] { return hook.bodies().size() >= 3; }, std::chrono::seconds(30)),
                  server.process().Stderr());
  std::this_thread::sleep_for(std::chrono::seconds(3));  // nothing more comes
  auto bodies = hook.bodies();
  CHECK(bodies.size() == 3);
  CHECK(Count(bodies, R"("kind":"run_failed")") == 1);
  CHECK(Count(bodies, R"("workflow":"failing")") == 1);
  CHECK(Count(bodies, "the boom node broke") == 1);
  CHECK(Count(bodies, R"("kind":"run_degraded")") == 1);
  CHECK(Count(bodies, R"("kind":"breaker_open")") == 1);
  CHECK(Count(bodies, R"("breaker":"pricing")") == 1);
  for (const std::string& body : bodies) {
    Json doc = Json::Parse(body);
    CHECK(doc["dedupe_id"].Str().size() > 0);
    CHECK(doc["time"].IsString());
  }
}

TEST_CASE("alerts wait out a refusing and failing webhook and a kill -9 of the server" *
          doctest::timeout(180)) {
  Sandbox box(KEEL_BIN);
  box.Write("failing.lua", kFailing);
  const int port = FreeLoopbackPort();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
  {
    Server server(box, {"--notify", url});
    CHECK(box.KeelDb({"run", "failing.lua"}).exit_code == 1);
    SqliteDb db(box.db(), false);
    // Refused at least once, then the server dies before any delivery.
    REQUIRE(WaitFor(
        [&] {
          return db.Query("SELECT attempts FROM alert_outbox WHERE attempts >= 1").size() == 1;
        },
        std::chrono::seconds(20)));
    server.process().Kill();
    CHECK(db.Query("SELECT id FROM alert_outbox WHERE delivered_at > 0").empty());
  }
  WebhookReceiver hook(port);
  hook.Answer(500);
  Server server(box, {"--notify", url});
  REQUIRE(WaitFor([&] { return hook.bodies().size() >= 2; }, std::chrono::seconds(30)));
  hook.Answer(200);
  SqliteDb db(box.db(), false);
  REQUIRE_MESSAGE(
      WaitFor([&] { return db.Query("SELECT id FROM alert_outbox WHERE delivered_at > 0").size() == 1; },
              std::chrono::seconds(60)),
      server.process().Stderr());
  auto bodies = hook.bodies();
  CHECK(bodies.size() >= 3);
  // Every post is the same alert, retried.
  CHECK(Count(bodies, R"("kind":"run_failed")") == static_cast<int>(bodies.size()));
  auto rows = db.Query("SELECT attempts, last_error FROM alert_outbox");
  REQUIRE(rows.size() == 1);
  CHECK(std::stoi(rows[0][0]) == static_cast<int>(bodies.size()) + 1);  // + the refused one
}

TEST_CASE("GET /api/v1/providers shows health checks; POST .../check runs one now" *
          doctest::timeout(180)) {
  const std::string key = "sk-serve-health-4242";
  MockLlmServer mock(MOCK_LLM_BIN, {"--require-key", key});
  Sandbox box(KEEL_BIN);
  box.Write("wf.lua", "local keel = require 'keel'\n"
                      "keel.provider 'main' { kind = 'openai', base_url = '" + mock.url() +
                          "', model = 'm', api_key_env = 'HEALTH_KEY', health = { interval = 1 } }\n"
                          "keel.provider 'unwatched' { kind = 'mock' }\n"
                          "return keel.workflow 'w' { keel.fn 'a' { run = function() return 1 "
                          "end } }\n");
  Server server(box, {}, {{"HEALTH_KEY", key}});
  httplib::Client client = server.Client();
  Json listed = Json::Null();
  REQUIRE(WaitFor(
      [&] {
        auto res = client.Get("/api/v1/providers");
        if (!res || res->status != 200) return false;
        listed = Json::Parse(res->body);
        return listed.Size() == 1 && listed[0]["result"].Str() == "ok";
      },
      std::chrono::seconds(30)));
  CHECK(listed[0]["provider"].Str() == "main");
  CHECK(listed[0]["file"].Str() == "wf.lua");
  CHECK(listed[0]["health_interval"].Num() == 1);
  // Probed again at its interval.
  std::string first = listed[0]["checked_at"].Str();
  CHECK(WaitFor(
      [&] {
        auto res = client.Get("/api/v1/providers");
        return res && Json::Parse(res->body)[0]["checked_at"].Str() != first;
      },
      std::chrono::seconds(20)));

  auto now = client.Post("/api/v1/providers/main/check", "", "application/json");
  REQUIRE(now);
  CHECK(now->status == 200);
  CHECK(Json::Parse(now->body)["result"].Str() == "ok");
  CHECK(now->body.find(key) == std::string::npos);
  auto unknown = client.Post("/api/v1/providers/unwatched/check", "", "application/json");
  REQUIRE(unknown);
  CHECK(unknown->status == 404);
  CHECK(Json::Parse(unknown->body)["error"].Str().find("unwatched") != std::string::npos);
  auto all = client.Get("/api/v1/providers");
  REQUIRE(all);
  CHECK(all->body.find(key) == std::string::npos);
}

TEST_CASE("a refused key shows as a failed provider in the API" * doctest::timeout(120)) {
  MockLlmServer mock(MOCK_LLM_BIN, {"--require-key", "the-right-key"});
  Sandbox box(KEEL_BIN);
  box.Write("wf.lua", "local keel = require 'keel'\n"
                      "keel.provider 'main' { kind = 'openai', base_url = '" + mock.url() +
                          "', model = 'm', api_key_env = 'HEALTH_KEY', health = { interval = 60 } }\n"
                          "return keel.workflow 'w' { keel.fn 'a' { run = function() return 1 "
                          "end } }\n");
  Server server(box, {}, {{"HEALTH_KEY", std::string("a-wrong-key-777")}});
  httplib::Client client = server.Client();
  auto res = client.Post("/api/v1/providers/main/check", "", "application/json");
  if (res && res->status == 404) {  // discovery not done yet
    REQUIRE(WaitFor([&] {
      res = client.Post("/api/v1/providers/main/check", "", "application/json");
      return res && res->status == 200;
    }, std::chrono::seconds(30)));
  }
  REQUIRE(res);
  Json doc = Json::Parse(res->body);
  CHECK(doc["result"].Str() == "failed");
  CHECK(doc["failed_step"].Str() == "request");
  CHECK(doc["error"].Str().find("HTTP 401") == 0);
  CHECK(res->body.find("a-wrong-key-777") == std::string::npos);
}

}  // namespace
}  // namespace keel::testing
