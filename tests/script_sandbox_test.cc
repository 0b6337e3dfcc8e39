// What keel changes in a script's standard libraries (scripts/script_sandbox.h):
// no os.exit, text chunks only, no debug.sethook, print and io.write on
// stderr, `require` next to the script.

#include "scripts/script_sandbox.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "scripts/workflow_loader.h"
#include "tests/support/temp_dir.h"

namespace {

namespace fs = std::filesystem;
using keel::LoadOptions;
using keel::LoadWorkflowFile;

using ScriptDir = keel::testing::TempDir;

// Loads a script whose top level computes `params` (Lua table fields) and
// returns the params JSON of its workflow.
std::string ParamsOf(ScriptDir* dir, const std::string& prelude, const std::string& params) {
  std::string path = dir->Write("flow.lua", "local keel = require 'keel'\n" + prelude +
                                                "\nreturn keel.workflow 'w' { params = {" + params +
                                                "}, keel.fn 'a' { run = function() end } }\n");
  auto loaded = LoadWorkflowFile(path, LoadOptions{});
  REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
  return *(*loaded)->main_workflow().params;
}

std::string LoadError(ScriptDir* dir, const std::string& text) {
  auto loaded = LoadWorkflowFile(dir->Write("flow.lua", text), LoadOptions{});
  REQUIRE_FALSE(loaded.ok());
  return loaded.status().message();
}

TEST_CASE("os.exit raises an error instead of ending the process") {
  ScriptDir dir;
  const std::string path = dir.path() + "/flow.lua";
  // A nonzero code: were os.exit to work, this test would end with it, failed.
  CHECK(LoadError(&dir, "local keel = require 'keel'\nos.exit(7)\n") ==
        path + ":2: os.exit is not available in keel scripts; use keel.fail or error()");
  CHECK(
      ParamsOf(&dir, "local ok, err = pcall(os.exit, 3)", "ok = ok, err = err") ==
      R"({"err":")" + path +
          R"j(:2: os.exit is not available in keel scripts; use keel.fail or error()","ok":false})j");
}

TEST_CASE("os.setlocale may read the locale but not change it") {
  ScriptDir dir;
  std::string params = ParamsOf(&dir, "local ok = pcall(os.setlocale, 'C')",
                                "changed = ok, query = type(os.setlocale())");
  CHECK(params == R"({"changed":false,"query":"string"})");
}

TEST_CASE("only text chunks load: binary ones are refused, not run") {
  ScriptDir dir;
  const std::string refused =
      "binary (precompiled) chunks cannot be loaded in keel scripts; only Lua source text";
  // A corrupt binary chunk crashed the process; now no binary chunk loads.
  std::string prelude =
      "local dumped = string.dump(function() return 5 end)\n"
      "local f = io.open('" +
      dir.path() +
      "/binmod.lua', 'wb') f:write(dumped) f:close()\n"
      "package.path = '" +
      dir.path() +
      "/?.lua;' .. package.path\n"
      "local _, from_load = load(dumped)\n"
      "local _, mode_b = load('return 1', 'x', 'b')\n"
      "local _, from_loadfile = loadfile('" +
      dir.path() +
      "/binmod.lua')\n"
      "local _, from_dofile = pcall(dofile, '" +
      dir.path() +
      "/binmod.lua')\n"
      "local _, from_require = pcall(require, 'binmod')\n"
      "local text = load('return 1 + 1')()\n"
      "local env = load('return x', 'c', 't', { x = 7 })()\n"
      "local with_env = loadfile('" +
      dir.Write("text.lua", "return y\n") + "', 'bt', { y = 8 })()\n";
  std::string params =
      ParamsOf(&dir, prelude,
               "from_load = from_load, mode_b = mode_b, from_loadfile = from_loadfile, "
               "from_dofile = from_dofile, from_require = from_require, text = text, env = env, "
               "with_env = with_env");
  CHECK(params.find(R"("from_load":"load: )" + refused + "\"") != std::string::npos);
  CHECK(params.find(R"("mode_b":"load: )" + refused + "\"") != std::string::npos);
  CHECK(params.find(R"("from_loadfile":")" + dir.path() + "/binmod.lua: " + refused + "\"") !=
        std::string::npos);
  CHECK(params.find(R"("from_dofile":")" + dir.path() + "/binmod.lua: " + refused + "\"") !=
        std::string::npos);
  CHECK(params.find("error loading module 'binmod' from file '" + dir.path() + "/binmod.lua'") !=
        std::string::npos);
  CHECK(params.find(R"("text":2)") != std::string::npos);
  CHECK(params.find(R"("env":7)") != std::string::npos);
  CHECK(params.find(R"("with_env":8)") != std::string::npos);
}

TEST_CASE("debug keeps its inspecting functions; sethook and the registry are gone") {
  ScriptDir dir;
  std::string params = ParamsOf(
      &dir, "local ok, err = pcall(debug.sethook)",
      "sethook = ok, err = err, gethook = debug.gethook == nil, registry = debug.getregistry == "
      "nil, setupvalue = debug.setupvalue == nil, interactive = debug.debug == nil, "
      "traceback = type(debug.traceback), getinfo = type(debug.getinfo)");
  CHECK(params == R"({"err":")" + dir.path() +
                      R"(/flow.lua:2: debug.sethook is not available in keel scripts: keel's own )"
                      R"(hook enforces timeouts and cancellation","gethook":true,)"
                      R"("getinfo":"function","interactive":true,"registry":true,)"
                      R"("sethook":false,"setupvalue":true,"traceback":"function"})");
}

TEST_CASE("print, io.write and io.stdout write to stderr, never stdout") {
  ScriptDir dir;
  std::string out_path = dir.path() + "/stdout.txt";
  std::string err_path = dir.path() + "/stderr.txt";
  fflush(stdout);
  fflush(stderr);
  int saved_out = dup(1);
  int saved_err = dup(2);
  int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  dup2(out, 1);
  dup2(err, 2);
  std::string params = ParamsOf(&dir,
                                "print('printed', 1, nil, true)\n"
                                "io.write('written', 2, '\\n')\n"
                                "io.stdout:write('handle\\n')\n"
                                "io.output():write('default\\n')",
                                "");
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  close(out);
  close(err);
  auto read = [](const std::string& path) {
    std::ostringstream text;
    text << std::ifstream(path).rdbuf();
    return text.str();
  };
  CHECK(read(out_path) == "");
  CHECK(read(err_path) == "printed\t1\tnil\ttrue\nwritten2\nhandle\ndefault\n");
}

TEST_CASE("require finds modules next to the script, whatever the current directory") {
  ScriptDir dir;
  dir.Write("helper.lua", "return { greet = function() return 'hi' end }\n");
  fs::create_directory(dir.path() + "/pkg");
  dir.Write("pkg/init.lua", "return { n = 3 }\n");
  fs::path saved = fs::current_path();
  fs::current_path("/");
  std::string params = ParamsOf(&dir, "local helper = require 'helper'\nlocal pkg = require 'pkg'",
                                "greeting = helper.greet(), n = pkg.n");
  fs::current_path(saved);
  CHECK(params == R"({"greeting":"hi","n":3})");
}

}  // namespace
