// Script problems end to end: `keel run` and `keel validate` reject bad
// workflow files with exit 2 and messages that name the file, line and node.

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/files.h"
#include "tests/support/keel_cli.h"
#include "tests/support/sandbox.h"

namespace keel::testing {
namespace {

constexpr int kTimeoutS = 120;

const char kGood[] = R"lua(local keel = require "keel"
return keel.workflow "good" {
  keel.fn "a" { run = function() return 1 end },
  keel.fn "b" { after = { "a" }, run = function(ctx) return ctx.deps.a + 1 end },
}
)lua";

struct BadScript {
  const char* what;
  const char* text;
  std::vector<std::string> expected;  // substrings of stderr
};

TEST_CASE("run: script and validation errors exit 2 naming the file, line and node" *
          doctest::timeout(kTimeoutS)) {
  const std::vector<BadScript> cases = {
      {"syntax error",
       R"lua(local keel = require "keel"
return keel.workflow "w" {
  keel.fn "a" { run = function() return 1 end },
  local x = = 2
}
)lua",
       {"bad.lua:4:"}},
      {"runtime error while loading",
       R"lua(local keel = require "keel"
error("bad config")
)lua",
       {"bad.lua:2:", "bad config"}},
      {"unknown dependency",
       R"lua(local keel = require "keel"
return keel.workflow "w" {
  keel.fn "fetch" { run = function() return 1 end },
  keel.fn "parse" { after = { "fecth" }, run = function() return 2 end },
}
)lua",
       {"bad.lua:4", "parse", "fecth", "did you mean", "'fetch'"}},
      {"cycle",
       R"lua(local keel = require "keel"
return keel.workflow "w" {
  keel.fn "alpha" { after = { "gamma" }, run = function() return 1 end },
  keel.fn "beta" { after = { "alpha" }, run = function() return 1 end },
  keel.fn "gamma" { after = { "beta" }, run = function() return 1 end },
}
)lua",
       {"bad.lua:", "cycle", "alpha", "beta", "gamma", "->"}},
      {"duplicate names",
       R"lua(local keel = require "keel"
return keel.workflow "w" {
  keel.fn "alpha" { run = function() return 1 end },
  keel.fn "alpha" { run = function() return 2 end },
}
)lua",
       {"bad.lua:4", "alpha", "duplicate"}},
      {"node without run",
       R"lua(local keel = require "keel"
return keel.workflow "w" {
  keel.fn "alpha" { },
}
)lua",
       {"bad.lua:3", "alpha", "run"}},
      {"misspelt option",
       R"lua(local keel = require "keel"
return keel.workflow "w" {
  keel.fn "alpha" { run = function() return 1 end },
  keel.fn "beta" { aftr = { "alpha" }, run = function() return 1 end },
}
)lua",
       {"bad.lua:4", "aftr", "after"}},
      {"nothing returned",
       R"lua(local keel = require "keel"
keel.workflow "w" { keel.fn "alpha" { run = function() return 1 end } }
)lua",
       {"bad.lua"}},
  };
  for (const BadScript& c : cases) {
    CAPTURE(c.what);
    Sandbox box(KEEL_BIN);
    std::string wf = box.Write("bad.lua", c.text);
    ExitInfo r = box.KeelDb({"run", wf});
    INFO(r.Describe());
    CHECK(r.exit_code == 2);
    for (const std::string& s : c.expected) {
      CAPTURE(s);
      CHECK(r.err.find(s) != std::string::npos);
    }
    CHECK(RunIdFromStderr(r.err).empty());

    ExitInfo v = box.Keel({"validate", wf});
    INFO(v.Describe());
    CHECK(v.exit_code == 2);
    for (const std::string& s : c.expected) {
      CAPTURE(s);
      CHECK(v.err.find(s) != std::string::npos);
    }
  }
}

TEST_CASE("validate: a good file" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string file = box.Write("good.lua", kGood);
  ExitInfo r = box.Keel({"validate", file});
  INFO(r.Describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == file + ": ok: workflow 'good' (2 nodes)\n");
  CHECK_FALSE(FileExists(box.Path("keel.db")));
}

TEST_CASE("validate: a script cannot end keel with os.exit, nor pass as a directory or device" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  // os.exit(0) used to end keel at once with exit 0 and no output: "ok".
  std::string quits = box.Write("quits.lua", "local keel = require 'keel'\nos.exit(0)\n");
  ExitInfo r = box.Keel({"validate", quits});
  INFO(r.Describe());
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(quits + ":2: os.exit is not available in keel scripts") != std::string::npos);
  std::filesystem::create_directory(box.Path("dir.lua"));
  ExitInfo dir = box.Keel({"validate", box.Path("dir.lua")});
  INFO(dir.Describe());
  CHECK(dir.exit_code == 2);
  CHECK(dir.err.find(box.Path("dir.lua") + ": is a directory, not a script") != std::string::npos);
  ExitInfo device = box.Keel({"validate", "/dev/zero"}, std::chrono::seconds(20));
  INFO(device.Describe());
  CHECK(device.exit_code == 2);
  CHECK(device.err.find("/dev/zero: is not a regular file") != std::string::npos);
}

}  // namespace
}  // namespace keel::testing
