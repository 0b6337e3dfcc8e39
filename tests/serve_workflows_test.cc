// GET /api/v1/workflows through the real binary: every .lua file under
// --workflows (recursively; hidden folders and symlinks leading outside
// left out) with its workflow name, params and node count as `keel validate
// --json` prints them; a syntax error and a file that loops at load listed
// with a clear error (the loop stopped by the timeout); answers kept until
// a file changes.

#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include "tests/support/files.h"
#include "tests/support/json.h"
#include "tests/support/sandbox.h"
#include "tests/support/serve_process.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

const char* kGood = R"(
local keel = require "keel"
return keel.workflow "good" {
  params = { n = 3, label = "x" },
  keel.fn "a" { run = function() return 1 end },
  keel.fn "b" { after = { "a" }, run = function() return 2 end },
}
)";

const char* kOther = R"(
local keel = require "keel"
return keel.workflow "other" {
  keel.fn "only" { run = function() return 1 end },
}
)";

Json Entry(const Json& list, const std::string& file) {
  for (size_t i = 0; i < list.Size(); ++i) {
    if (list[i]["file"].Str() == file) return list[i];
  }
  return Json::Null();
}

// Pids of the processes whose command line contains `needle`.
std::vector<int> ProcessesWith(const std::string& needle) {
  std::vector<int> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(needle) != std::string::npos) pids.push_back(std::stoi(name));
  }
  return pids;
}

}  // namespace

TEST_CASE("a keel serve killed with SIGKILL leaves no child command running" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::filesystem::create_directories(box.Path("flows"));
  box.Write("flows/spin.lua", "while true do end\n");
  ServeProcess serve(KEEL_BIN, box.dir(), box.db(), {"--workflows", box.Path("flows")});
  std::thread asker([&] {
    auto client = serve.Client();
    client->set_read_timeout(std::chrono::seconds(30));
    client->Get("/api/v1/workflows");  // fails once the server is killed
  });
  const std::string needle = "spin.lua";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ProcessesWith(needle).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool started = !ProcessesWith(needle).empty();
  CHECK(kill(serve.process().pid(), SIGKILL) == 0);
  asker.join();
  REQUIRE_MESSAGE(started, "the server never started its child");
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!ProcessesWith(needle).empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK_MESSAGE(ProcessesWith(needle).empty(), "a `keel validate` child outlived its server");
}

TEST_CASE("workflows lists the files under --workflows, with errors for those that do not load" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  namespace fs = std::filesystem;
  fs::create_directories(box.Path("flows/sub"));
  fs::create_directories(box.Path("flows/.hidden"));
  box.Write("flows/good.lua", kGood);
  box.Write("flows/sub/other.lua", kOther);
  box.Write("flows/bad.lua", "local keel = require \"keel\"\nreturn keel.workflow \"bad\" {\n  oops(\n");
  box.Write("flows/loop.lua", "while true do end\n");
  box.Write("flows/.hidden/secret.lua", kOther);
  box.Write("flows/notes.txt", "not a workflow\n");
  box.Write("outside.lua", kOther);
  REQUIRE(symlink(box.Path("outside.lua").c_str(), box.Path("flows/link.lua").c_str()) == 0);
  REQUIRE(symlink("good.lua", box.Path("flows/alias.lua").c_str()) == 0);  // inside: listed

  ServeProcess serve(KEEL_BIN, box.dir(), box.db(), {"--workflows", box.Path("flows")});
  auto client = serve.Client();
  auto reply = client->Get("/api/v1/workflows");
  REQUIRE(reply);
  CHECK(reply->status == 200);
  Json list = Json::Parse(reply->body);
  CAPTURE(reply->body);
  REQUIRE(list.IsArray());
  REQUIRE(list.Size() == 5);
  const char* order[] = {"alias.lua", "bad.lua", "good.lua", "loop.lua", "sub/other.lua"};
  for (size_t i = 0; i < 5; ++i) CHECK(list[i]["file"].Str() == order[i]);

  Json good = Entry(list, "good.lua");
  CHECK(good["workflow"].Str() == "good");
  CHECK(good["nodes"].Int() == 2);
  CHECK(good["params"]["n"].Int() == 3);
  CHECK(good["params"]["label"].Str() == "x");
  CHECK(good["error"].IsNull());
  CHECK(Entry(list, "alias.lua")["workflow"].Str() == "good");
  CHECK(Entry(list, "sub/other.lua")["workflow"].Str() == "other");
  CHECK(Entry(list, "sub/other.lua")["params"].IsObject());
  CHECK(Entry(list, "bad.lua")["error"].Str().find("bad.lua") != std::string::npos);
  CHECK(Entry(list, "bad.lua")["workflow"].IsNull());
  CHECK(Entry(list, "loop.lua")["error"].Str().find("did not finish") != std::string::npos);
  CHECK(Entry(list, "link.lua").IsNull());

  // The CLI prints the same entry.
  auto cli = box.Keel({"validate", "--json", "flows/good.lua"});
  REQUIRE_MESSAGE(cli.exit_code == 0, cli.Describe());
  Json printed = Json::Parse(cli.out);
  CHECK(printed["file"].Str() == "flows/good.lua");
  for (const char* key : {"workflow", "params", "nodes"}) {
    CHECK(printed[key].Dump() == good[key].Dump());
  }

  // Kept: the second listing loads nothing (the loop's timeout is kept too).
  auto cached_start = std::chrono::steady_clock::now();
  auto cached = client->Get("/api/v1/workflows");
  REQUIRE(cached);
  CHECK(std::chrono::steady_clock::now() - cached_start < std::chrono::seconds(2));
  CHECK(Json::Parse(cached->body).Dump() == list.Dump());

  // An edited file is loaded again.
  std::string three = kGood;
  three.insert(three.rfind("}\n"),
               "  keel.fn \"c\" { after = { \"b\" }, run = function() return 3 end },\n");
  box.Write("flows/good.lua", three);
  Json edited = Json::Parse(client->Get("/api/v1/workflows")->body);
  CHECK(Entry(edited, "good.lua")["nodes"].Int() == 3);
}

}  // namespace keel::testing
