// keel.llm, keel.http and keel.log as a script uses them, through the real
// binary: a misspelt field or an unknown provider fails the node at once
// (kind `permanent`, no retries) with a did-you-mean at the script's own
// line; a misspelt node option suggests the right one; keel.log lines come
// out in order with the progress lines around them; a workflow file with
// the shebang line the reference gives runs as a program.

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"
#include "tests/support/subprocess.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

// Node `call` runs `line` (on line 5 of the file) with three attempts allowed.
std::string CallWorkflow(const std::string& line) {
  return "local keel = require 'keel'\n"
         "keel.provider 'mock' { kind = 'mock', model = 'm' }\n"
         "return keel.workflow 'calls' {\n"
         "  keel.fn 'call' { retry = { attempts = 3, base = 0 }, run = function(ctx)\n"
         "    return " +
         line +
         "\n"
         "  end },\n"
         "}\n";
}

void CheckFailsAtOnce(const std::string& line, const std::string& message) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("calls.lua", CallWorkflow(line));
  ExitInfo r = box.KeelDb({"run", wf, "--json"});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 1);
  Json node = NodeEntry(box.Show(Json::Parse(r.out)["run_id"].Str())["nodes"], "call");
  INFO(node.Dump());
  CHECK(node["attempts"].Int() == 1);
  CHECK(node["error_kind"].Str() == "permanent");
  CHECK(node["error"].Str().find(wf + ":5: " + message) == 0);
}

TEST_CASE("keel.llm: a misspelt field fails at the script's line with a suggestion" *
          doctest::timeout(kTimeoutS)) {
  CheckFailsAtOnce("keel.llm { provider = 'mock', promt = 'hi' }",
                   "keel.llm: unknown field 'promt' (did you mean 'prompt'?)");
}

TEST_CASE("keel.llm: an unknown provider is permanent, with a suggestion" *
          doctest::timeout(kTimeoutS)) {
  CheckFailsAtOnce("keel.llm { provider = 'mokc', prompt = 'hi' }",
                   "keel.llm: unknown provider 'mokc' (did you mean 'mock'?)");
}

TEST_CASE("keel.http: a misspelt field fails at the script's line with a suggestion" *
          doctest::timeout(kTimeoutS)) {
  CheckFailsAtOnce("keel.http { url = 'http://127.0.0.1:9/', methd = 'POST' }",
                   "keel.http: unknown field 'methd' (did you mean 'method'?)");
}

TEST_CASE("node option 'retries' suggests 'retry'" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("opts.lua", R"lua(local keel = require "keel"
return keel.workflow "opts" {
  keel.fn "a" { retries = 3, run = function() return 1 end },
}
)lua");
  ExitInfo r = box.Keel({"validate", wf});
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("unknown option 'retries' (did you mean 'retry'?)") != std::string::npos);
}

TEST_CASE("keel.log lines come out in order with the progress lines" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("logs.lua", R"lua(local keel = require "keel"
return keel.workflow "logs" {
  keel.fn "a" { run = function() keel.log("from a") return 1 end },
  keel.fn "b" { after = { "a" }, run = function() print("from b") return 2 end },
}
)lua");
  ExitInfo r = box.KeelDb({"run", wf});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 0);
  size_t at = 0;
  for (const char* line :
       {"a started\n", "[a] from a\n", "a succeeded", "b started\n", "from b\n", "b succeeded"}) {
    CAPTURE(line);
    size_t found = r.err.find(line, at);
    CHECK(found != std::string::npos);
    if (found != std::string::npos) at = found;
  }
}

TEST_CASE("a file starting #!/usr/bin/env -S keel run runs as a program" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("hello.lua", R"lua(#!/usr/bin/env -S keel run
local keel = require "keel"
return keel.workflow "hello" {
  params = { name = "world" },
  keel.fn "greet" { run = function(ctx) return "hello, " .. ctx.params.name end },
}
)lua");
  REQUIRE(chmod(wf.c_str(), 0755) == 0);
  std::string path =
      std::filesystem::path(KEEL_BIN).parent_path().string() + ":" + std::getenv("PATH");
  Subprocess program(wf, {.args = {"-p", "name=tea", "--db", box.db()},
                          .cwd = box.dir(),
                          .env = {{"PATH", path}, {"KEEL_DB", std::nullopt}}});
  ExitInfo r = program.Wait(std::chrono::seconds(60));
  INFO(r.Describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("greet = \"hello, tea\"") != std::string::npos);
}

}  // namespace
}  // namespace keel::testing
