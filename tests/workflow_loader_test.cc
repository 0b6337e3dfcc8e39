#include "scripts/workflow_loader.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "scripts/sha256.h"
#include "tests/support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using keel::ErrorKind;
using keel::LoadOptions;
using keel::LoadWorkflowFile;

using ScriptDir = keel::testing::TempDir;

// The error message of loading `text`, which must fail with kPermanent.
std::string LoadError(ScriptDir* dir, const std::string& text, std::string* path = nullptr) {
  std::string file = dir->Write("flow.lua", text);
  if (path != nullptr) *path = file;
  auto loaded = LoadWorkflowFile(file, LoadOptions{});
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.status().kind() == ErrorKind::kPermanent);
  return loaded.status().message();
}

constexpr const char* kValid = R"(local keel = require "keel"
local helper = keel.workflow "helper" {
  keel.fn "t" { run = function(ctx) return "x" end },
}
return keel.workflow "etl" {
  params = { source = "db", limit = 10 },
  defaults = { timeout = 30 },
  keel.fn "extract" { run = function(ctx) return { rows = ctx.params.limit } end },
  keel.fn "clean" { after = "extract", optional = true, timeout = 5,
                    retry = { attempts = 3, on = { "transient" } }, fallback = helper,
                    run = function(ctx) return 1 end },
  keel.fn "report" {
    after = { "extract", "clean" },
    when = function(ctx) return true end,
    run = function(ctx) return ctx.deps.extract.rows end,
  },
}
)";

TEST_CASE("a valid file with several workflows loads into specs") {
  ScriptDir dir;
  std::string path = dir.Write("etl.lua", kValid);
  auto loaded = LoadWorkflowFile(path, LoadOptions{});
  REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
  const keel::LoadedScript& script = **loaded;
  REQUIRE(script.workflows.size() == 2);
  CHECK(script.workflows[0].name == "helper");
  CHECK(script.workflows[0].where == path + ":2");
  CHECK(script.main == 1);
  const keel::WorkflowSpec& etl = script.main_workflow();
  CHECK(etl.name == "etl");
  CHECK(*etl.params == R"({"limit":10,"source":"db"})");
  REQUIRE(etl.nodes.size() == 3);
  CHECK(etl.nodes[0].name == "extract");
  CHECK(etl.nodes[0].where == path + ":8");
  CHECK(etl.nodes[0].after.empty());
  CHECK(etl.nodes[0].body != nullptr);
  CHECK(etl.nodes[0].kind == "fn");
  CHECK(etl.nodes[1].after == std::vector<std::string>{"extract"});
  CHECK(etl.nodes[1].optional);
  CHECK_FALSE(etl.nodes[1].has_when);
  CHECK(etl.nodes[2].after == std::vector<std::string>{"extract", "clean"});
  CHECK(etl.nodes[2].has_when);
  CHECK(etl.nodes[2].where == path + ":12");
  CHECK(script.Find("helper") == &script.workflows[0]);
  CHECK(script.Find("nope") == nullptr);

  CHECK(script.info.path == fs::canonical(path).string());
  CHECK(script.info.text == kValid);
  CHECK(script.info.sha256 == keel::Sha256Hex(kValid));
  CHECK(script.info.sha256.size() == 64);
  CHECK(script.runtime != nullptr);

  REQUIRE(script.declarations.size() == 2);
  CHECK(*script.declarations[1].defaults == R"({"timeout":30})");
  CHECK(*script.declarations[1].nodes[0].policy == "{}");
  CHECK(*script.declarations[1].nodes[1].policy ==
        R"({"fallback":"helper","retry":{"attempts":3,"on":["transient"]},"timeout":5})");
}

TEST_CASE("sha256 of known input") {
  CHECK(keel::Sha256Hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("a relative path appears as given in messages; ScriptInfo.path is absolute") {
  ScriptDir dir;
  dir.Write("rel.lua",
            "local keel = require 'keel'\nreturn keel.workflow 'w' {\n"
            "  keel.fn 'a' { aftr = {} } }\n");
  fs::path saved = fs::current_path();
  fs::current_path(dir.path());
  auto bad = LoadWorkflowFile("rel.lua", LoadOptions{});
  dir.Write("ok.lua",
            "local keel = require 'keel'\nreturn keel.workflow 'w' {\n"
            "  keel.fn 'a' { run = function() end } }\n");
  auto good = LoadWorkflowFile("ok.lua", LoadOptions{});
  fs::current_path(saved);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() ==
        "rel.lua:3: node 'a': unknown option 'aftr' (did you mean 'after'?)");
  REQUIRE(good.ok());
  CHECK((*good)->info.path == (fs::canonical(dir.path()) / "ok.lua").string());
  CHECK((*good)->main_workflow().nodes[0].where == "ok.lua:3");
}

TEST_CASE("syntax and runtime errors name file and line") {
  ScriptDir dir;
  std::string path;
  std::string message = LoadError(&dir, "local keel = require 'keel'\n\nlocal x = = 1\n", &path);
  CHECK(message.rfind(path + ":3:", 0) == 0);
  message = LoadError(&dir, "local keel = require 'keel'\nerror('boom')\n", &path);
  CHECK(message == path + ":2: boom");
  message = LoadError(&dir, "error({})\n", &path);
  CHECK(message == path + ":1: (error object is a table value)");
}

TEST_CASE("every load error names the file, and the line when it is known") {
  ScriptDir dir;
  const std::string path = dir.path() + "/flow.lua";
  CHECK(LoadError(&dir, "local x = 1\nerror(nil)\n") == path + ":2: (error object is a nil value)");
  CHECK(LoadError(&dir, "error(setmetatable({}, { __tostring = function() error('x') end }))\n") ==
        path + ":1: (error object is a table value)");
  CHECK(LoadError(&dir, "local x = 1\nerror('no position', 0)\n") == path + ":2: no position");
  CHECK(LoadError(&dir,
                  "\nlocal keel = require 'keel'\nkeel.fail{ kind = 'permanent', "
                  "message = 'bad config' }\n") == path + ":3: bad config");
  // The parser gives up on deep nesting without a line.
  CHECK(LoadError(&dir, "return " + std::string(100000, '{')) == path + ": C stack overflow");
  CHECK(LoadError(&dir, "return " + std::string(100000, '(')) == path + ": C stack overflow");
}

TEST_CASE("a byte order mark and a #! line are skipped and line numbers stay right") {
  ScriptDir dir;
  const std::string body =
      "local keel = require 'keel'\nreturn keel.workflow 'w' {\n"
      "  keel.fn 'a' { run = function() end } }\n";
  for (const std::string& head :
       {std::string("\xEF\xBB\xBF"), std::string("#!/usr/bin/env keel run\n"),
        std::string("\xEF\xBB\xBF#!/usr/bin/env keel run\r\n")}) {
    CAPTURE(head);
    bool shebang = head.find('#') != std::string::npos;
    std::string path = dir.Write("flow.lua", head + body);
    auto loaded = LoadWorkflowFile(path, LoadOptions{});
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
    CHECK((*loaded)->main_workflow().nodes[0].where == path + (shebang ? ":4" : ":3"));
    CHECK((*loaded)->info.text == head + body);  // recorded as it is
    std::string message = LoadError(&dir, head + "local x = = 1\n");
    CHECK(message.rfind(path + (shebang ? ":2:" : ":1:"), 0) == 0);
  }
}

TEST_CASE("a directory, a device and an oversized file are refused before reading") {
  ScriptDir dir;
  fs::create_directory(dir.path() + "/sub.lua");
  auto directory = LoadWorkflowFile(dir.path() + "/sub.lua", LoadOptions{});
  REQUIRE_FALSE(directory.ok());
  CHECK(directory.status().message() == dir.path() + "/sub.lua: is a directory, not a script");
  auto device = LoadWorkflowFile("/dev/zero", LoadOptions{});
  REQUIRE_FALSE(device.ok());
  CHECK(device.status().message() == "/dev/zero: is not a regular file (a script must be one)");
  std::string big = dir.Write("big.lua", std::string(keel::kMaxScriptBytes + 1, ' '));
  auto oversized = LoadWorkflowFile(big, LoadOptions{});
  REQUIRE_FALSE(oversized.ok());
  CHECK(oversized.status().message() ==
        big + ": is 16777217 bytes; a script may be at most 16 MiB (16777216 bytes)");
  std::string script =
      "local keel = require 'keel'\nreturn keel.workflow 'w' {\n"
      "  keel.fn 'a' { run = function() end } }\n--";
  script.resize(keel::kMaxScriptBytes, 'x');
  std::string at_cap = dir.Write("cap.lua", script);
  CHECK(LoadWorkflowFile(at_cap, LoadOptions{}).ok());
}

TEST_CASE("DSL misuse is reported at the declaring line") {
  ScriptDir dir;
  const std::string path = dir.path() + "/flow.lua";
  auto load = [&](const std::string& body) {
    return LoadError(&dir, "local keel = require 'keel'\nreturn keel.workflow 'w' {\n" + body);
  };
  CHECK(load("  keel.fn 'a' { aftr = {} } }\n") ==
        path + ":3: node 'a': unknown option 'aftr' (did you mean 'after'?)");
  CHECK(load("  keel.fn 'a' { bogus = 1 } }\n") == path + ":3: node 'a': unknown option 'bogus'");
  CHECK(load("  keel.fn 'a' { optional = 'yes' } }\n") ==
        path + ":3: node 'a': option 'optional' must be true or false, got string");
  CHECK(load("  keel.fn 'a' { run = 1 } }\n") ==
        path + ":3: node 'a': option 'run' must be a function, got 1");
  CHECK(load("  keel.fn 'a' { after = { 'x', 2 } } }\n") ==
        path +
            ":3: node 'a': option 'after' must be a node name or a list of node names, "
            "got table");
  CHECK(load("  keel.fn 'a' { timeout = -1 } }\n") ==
        path +
            ":3: node 'a': option 'timeout' must be a number of seconds above 0 and at most 1e9, "
            "got -1");
  CHECK(load("  keel.fn 'a' { timeout = math.huge } }\n") ==
        path +
            ":3: node 'a': option 'timeout' must be a number of seconds above 0 and at most 1e9, "
            "got inf");
  CHECK(load("  keel.fn 'a' { total_timeout = 1e308 } }\n") ==
        path +
            ":3: node 'a': option 'total_timeout' must be a number of seconds above 0 and at "
            "most 1e9, got 1e+308");
  CHECK(load("  keel.fn 'a' { memory = -5 } }\n") ==
        path +
            ":3: node 'a': option 'memory' must be a finite number of MiB above 0, or a size "
            "such as \"64MB\", got -5");
  CHECK(load("  keel.fn 'a' { retry = 2.5 } }\n") ==
        path +
            ":3: node 'a': option 'retry' must be a table or a whole number from 1 to "
            "2147483647, got 2.5");
  CHECK(load("  keel.fn 'a' { join = 'some' } }\n").find("option 'join' must be \"all\"") !=
        std::string::npos);
  CHECK(load("  keel.fn 'a' { retry = { on = print } } }\n") ==
        path + ":3: node 'a': option 'retry': at .on: a function cannot be JSON");
  CHECK(load("  keel.fn 'a' { 1 } }\n") ==
        path + ":3: node 'a': options are name = value pairs; found a number key");
  CHECK(load("  keel.fn 'a b' { } }\n") ==
        path +
            ":3: invalid node name 'a b': use letters, digits, '_', '.' and '-', starting "
            "with a letter or '_'");
  CHECK(load("  keel.fn 'a' }\n") ==
        path + ":2: workflow 'w': item 1 is keel.fn \"a\" without its { ... } of options");
  CHECK(load("  42 }\n") ==
        path + ":2: workflow 'w': item 1 is a number, not a node (keel.fn \"name\" { ... })");
  CHECK(load("  parms = {} }\n") ==
        path + ":2: workflow 'w': unknown option 'parms' (did you mean 'params'?)");
  CHECK(load("  params = { 1, 2 } }\n") ==
        path + ":2: workflow 'w': option 'params' must be a table of name = value, not a list");
}

TEST_CASE("Validate diagnostics come back one per line with file, line and node") {
  ScriptDir dir;
  std::string path;
  std::string message = LoadError(&dir, R"(local keel = require 'keel'
return keel.workflow 'w' {
  keel.fn 'extract' { run = function() end },
  keel.fn 'load' { after = { 'extrct' }, run = function() end },
  keel.fn 'report' { after = 'load' },
}
)",
                                  &path);
  CHECK(std::count(message.begin(), message.end(), '\n') == 1);
  CHECK(message.find(path + ":4: node 'load': unknown dependency 'extrct' (did you mean "
                            "'extract'?)") != std::string::npos);
  CHECK(message.find(path + ":5: node 'report': has nothing to run") != std::string::npos);
}

TEST_CASE("workflow names are unique per file") {
  ScriptDir dir;
  std::string path;
  std::string message = LoadError(&dir, R"(local keel = require 'keel'
keel.workflow 'a' { keel.fn 'x' { run = print } }
return keel.workflow 'a' { keel.fn 'y' { run = print } }
)",
                                  &path);
  CHECK(message == path + ":3: workflow 'a' is declared twice (first at " + path + ":2)");
}

TEST_CASE("the script must return a workflow") {
  ScriptDir dir;
  const std::string path = dir.path() + "/flow.lua";
  CHECK(LoadError(&dir,
                  "local keel = require 'keel'\nkeel.workflow 'a' { keel.fn 'x' { run = "
                  "print } }\n") ==
        path + ": the script must return a workflow (keel.workflow ...), got nil");
  CHECK(LoadError(&dir, "return 42\n") ==
        path + ": the script must return a workflow (keel.workflow ...), got number");
}

TEST_CASE("a missing file and a script over the memory limit fail cleanly") {
  auto missing = LoadWorkflowFile("/nonexistent/keel/flow.lua", LoadOptions{});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().rfind("/nonexistent/keel/flow.lua: cannot open:", 0) == 0);

  ScriptDir dir;
  std::string path = dir.Write("big.lua", "local t = {} for i = 1, 1e7 do t[i] = i end\n");
  LoadOptions options;
  options.memory_limit = 1u << 20;
  auto big = LoadWorkflowFile(path, options);
  REQUIRE_FALSE(big.ok());
  CHECK(big.status().message() ==
        path + ": memory limit of 1 MiB exceeded while running the script");
}

}  // namespace
