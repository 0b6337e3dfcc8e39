// `keel run` given what it cannot run: bad invocations and option values
// exit 2 naming what is wrong, text that is not UTF-8 in -p or in an error,
// nodes that fail with odd error values or call os.exit. Through the real
// binary.

#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>
#include <vector>

#include "tests/cli_run_util.h"
#include "tests/support/files.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

// Whether `text` is one JSON value in valid UTF-8.
bool ValidUtf8Json(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.c_str(), text.size());
  return !doc.HasParseError();
}

TEST_CASE("run: bad invocations exit 2" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("pipeline.lua", kPipeline);

  ExitInfo no_equals = box.KeelDb({"run", wf, "-p", "novalue"});
  INFO(no_equals.Describe());
  CHECK(no_equals.exit_code == 2);
  CHECK(no_equals.err.find("novalue") != std::string::npos);

  ExitInfo missing = box.KeelDb({"run", box.Path("missing.lua")});
  INFO(missing.Describe());
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("missing.lua") != std::string::npos);

  ExitInfo unknown_flag = box.KeelDb({"run", wf, "--no-such-flag"});
  INFO(unknown_flag.Describe());
  CHECK(unknown_flag.exit_code == 2);

  ExitInfo no_command = box.Keel({"frobnicate"});
  INFO(no_command.Describe());
  CHECK(no_command.exit_code == 2);
}

TEST_CASE("run: bad option values exit 2" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("pipeline.lua", kPipeline);
  for (std::vector<std::string> extra :
       {std::vector<std::string>{"--workers", "abc"}, {"--durability", "sometimes"}}) {
    CAPTURE(extra[0]);
    ExitInfo r = box.KeelDb({"run", wf, extra[0], extra[1]});
    INFO(r.Describe());
    CHECK(r.exit_code == 2);
  }
  ExitInfo full = box.KeelDb({"run", wf, "--durability", "full"});
  INFO(full.Describe());
  CHECK(full.exit_code == 0);
}

TEST_CASE("run: nodes that fail with odd error values fail cleanly" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("odd.lua", R"lua(local keel = require "keel"
return keel.workflow "odd" {
  keel.fn "table_error" { run = function() error({ code = 7 }) end },
  keel.fn "nil_error" { run = function() error() end },
  keel.fn "bad_output" { run = function() return function() end end },
  keel.fn "fine" { run = function() return "fine" end },
}
)lua");
  Json out = RunJson(box, wf, 1);
  for (const char* node : {"table_error", "nil_error", "bad_output"}) {
    CAPTURE(node);
    CHECK(out["nodes"][node]["status"].Str() == "failed");
    CHECK(!out["nodes"][node]["error"].Str().empty());
  }
  CHECK(out["outputs"]["fine"].Str() == "fine");
}

TEST_CASE("run: os.exit in a node fails it and the run reports; keel is not ended" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("quit.lua", R"lua(local keel = require "keel"
return keel.workflow "quit" {
  keel.fn "a" { run = function() os.exit(0) end },
  keel.fn "b" { run = function() return "ran" end },
}
)lua");
  Json out = RunJson(box, wf, 1);
  CHECK(out["status"].Str() == "failed");
  CHECK(out["nodes"]["a"]["error"].Str().find(
            "quit.lua:3: os.exit is not available in keel scripts") != std::string::npos);
  CHECK(out["outputs"]["b"].Str() == "ran");
}

TEST_CASE("--json stays valid UTF-8 when an error holds bytes that are not" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("bad_bytes.lua", R"lua(local keel = require "keel"
return keel.workflow "bad_bytes" {
  keel.fn "n" { run = function() error("bad \255\254 bytes") end },
}
)lua");
  ExitInfo r = box.KeelDb({"run", wf, "--json"});
  INFO(r.Describe());
  REQUIRE(r.exit_code == 1);
  CHECK(ValidUtf8Json(r.out));
  Json out = Json::Parse(r.out);
  CHECK(out["error"].Str().find("bad \xEF\xBF\xBD\xEF\xBF\xBD bytes") != std::string::npos);
  std::string id = out["run_id"].Str();
  ExitInfo show = box.KeelDb({"show", id, "--json", "--events"});
  INFO(show.Describe());
  CHECK(show.exit_code == 0);
  CHECK(ValidUtf8Json(show.out));
  ExitInfo runs = box.KeelDb({"runs", "--json"});
  INFO(runs.Describe());
  CHECK(runs.exit_code == 0);
  CHECK(ValidUtf8Json(runs.out));
}

TEST_CASE("-p with a key or value that is not UTF-8 is a usage error naming it" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("pipeline.lua", kPipeline);
  ExitInfo value = box.KeelDb({"run", wf, "-p", "topic=\xFF\xFE"});
  INFO(value.Describe());
  CHECK(value.exit_code == 2);
  CHECK(value.err.find("keel: -p topic: the value is not valid UTF-8") != std::string::npos);
  ExitInfo key = box.KeelDb({"run", wf, "-p", "t\xFFpic=x"});
  INFO(key.Describe());
  CHECK(key.exit_code == 2);
  CHECK(key.err.find("the key is not valid UTF-8") != std::string::npos);
  CHECK(box.Runs().Size() == 0);
}

}  // namespace
}  // namespace keel::testing
