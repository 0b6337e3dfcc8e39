// keel.exec through the real binary: an exec node in a workflow (templates
// in its arguments, stdin from a function, JSON output), garbage under
// output "json", exit_codes, a timeout that kills every process the program
// started, keel.exec from inside keel.fn, declaration errors at the
// declaring line, and a resume that does not run a recorded exec node again.

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/policy_test_util.h"

namespace keel::testing {
namespace {

// Writes an executable shell script `name` into the sandbox.
std::string Script(const Sandbox& box, const std::string& name, const std::string& body) {
  std::string path = box.Write(name, "#!/bin/sh\n" + body);
  chmod(path.c_str(), 0755);
  return path;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Dead, or a zombie its new parent has not reaped yet.
bool Gone(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::string stat = ReadAll("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  return close == std::string::npos || stat.substr(close + 2, 1) == "Z";
}

TEST_CASE("exec: a node runs a program with templated arguments, JSON stdin and JSON output" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  Script(box, "train.sh", R"sh(read -r line
printf '{"stdin": %s, "lr": "%s", "n": %s, "node": "%s", "attempt": %s}\n' \
  "$line" "$1" "$2" "$KEEL_NODE" "$KEEL_ATTEMPT"
)sh");
  mkdir(box.Path("sub").c_str(), 0755);
  box.Write("sub/marker", "here\n");
  std::string wf = box.Write("flow.lua", R"lua(local keel = require "keel"
return keel.workflow "flow" {
  params = { lr = "0.1" },
  keel.fn "prep" { run = function() return { n = 3, words = { "a", "b" } } end },
  keel.exec "train" {
    after = { "prep" },
    command = { "./train.sh", "{{params.lr}}", "{{deps.prep.n}}" },
    stdin = function(ctx) return ctx.deps.prep end,
    output = "json",
    timeout = 30,
  },
  keel.exec "list" { command = { "ls" }, cwd = "sub", output = "lines" },
  keel.exec "greet" { command = { "printf", "%s", "$GREETING" }, env = { GREETING = "hi" } },
  keel.fn "use" { after = { "train", "list", "greet" }, run = function(ctx)
    return { lr = ctx.deps.train.lr, n = ctx.deps.train.stdin.n, list = ctx.deps.list,
             greet = ctx.deps.greet }
  end },
}
)lua");
  Json out = RunJson(box, wf, 0, {"-p", "lr=0.5"});
  CHECK(out["outputs"]["use"]["lr"].Str() == "0.5");
  CHECK(out["outputs"]["use"]["n"].Int() == 3);
  CHECK(out["outputs"]["use"]["list"].Dump() == R"(["marker"])");
  // No shell: "$GREETING" is an argument as written.
  CHECK(out["outputs"]["use"]["greet"].Str() == "$GREETING");
  Json train = NodeEntry(box.Show(out["run_id"].Str())["nodes"], "train");
  CHECK(train["status"].Str() == "succeeded");
  CHECK(train["output"]["node"].Str() == "train");
  CHECK(train["output"]["attempt"].Int() == 1);
  CHECK(train["output"]["stdin"]["words"].Dump() == R"(["a","b"])");
}

TEST_CASE("exec: the items of a keel.map run a program each, with {{item}} and {{index}}" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("flow.lua", R"lua(local keel = require "keel"
return keel.workflow "flow" {
  keel.fn "list" { run = function() return { { word = "ab" }, { word = "cd" } } end },
  keel.map "upper" {
    after = { "list" },
    over = function(ctx) return ctx.deps.list end,
    node = keel.exec { command = { "printf", "%s-%s", "{{index}}", "{{item.word}}" } },
  },
}
)lua");
  Json out = RunJson(box, wf, 0);
  CHECK(out["outputs"]["upper"].Dump() == R"(["1-ab","2-cd"])");
  // Outside a map there is no item: the node fails instead of passing "".
  std::string bad = box.Write("bad.lua", R"lua(local keel = require "keel"
return keel.workflow "bad" {
  keel.exec "echo" { command = { "echo", "{{item}}" } },
}
)lua");
  ExitInfo r = box.KeelDb({"run", bad}, kPrompt);
  INFO(r.Describe());
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("{{item}} is only set in the items of a keel.map") != std::string::npos);
}

TEST_CASE("exec: output json that is not JSON fails the node, permanent, quoting the output" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("garbage.lua", R"lua(local keel = require "keel"
return keel.workflow "garbage" {
  keel.exec "parse" {
    command = { "echo", "Traceback (most recent call last): oops" },
    output = "json",
    retry = { attempts = 3, base = 0.01 },
  },
}
)lua");
  ExitInfo r = box.KeelDb({"run", wf}, kPrompt);
  INFO(r.Describe());
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("error: parse: permanent: echo 'Traceback (most recent call last): oops': "
                   "stdout is not JSON") != std::string::npos);
  CHECK(r.out.find("it starts with \"Traceback (most recent call last): oops") !=
        std::string::npos);
  Json parse = NodeEntry(box.Show(RunIdFromStderr(r.err))["nodes"], "parse");
  CHECK(parse["error_kind"].Str() == "permanent");
  CHECK(parse["attempts"].Int() == 1);
}

TEST_CASE(
    "exec: exit_codes map exit statuses to kinds; others are transient; stderr's tail "
    "is in the error" *
    doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("codes.lua", R"lua(local keel = require "keel"
return keel.workflow "codes" {
  keel.exec "mapped" {
    optional = true,
    command = { "sh", "-c", "echo 'bad input file' >&2; exit 2" },
    exit_codes = { [2] = "permanent", [3] = "rate_limited" },
    retry = { attempts = 3, base = 0.01 },
  },
  keel.exec "flaky" {
    optional = true,
    command = { "sh", "-c", "echo try again >&2; exit 7" },
    exit_codes = { [2] = "permanent" },
    retry = { attempts = 2, base = 0.01 },
  },
  keel.exec "missing" { optional = true, command = { "./no-such-tool", "x" },
                        retry = { attempts = 3, base = 0.01 } },
  keel.exec "badcwd" { optional = true, command = { "true" }, cwd = "no/such/dir" },
}
)lua");
  Json out = RunJson(box, wf, 3);
  Json nodes = box.Show(out["run_id"].Str())["nodes"];
  Json mapped = NodeEntry(nodes, "mapped");
  CHECK(mapped["error_kind"].Str() == "permanent");
  CHECK(mapped["attempts"].Int() == 1);
  CHECK(mapped["error"].Str().find("exited with code 2; stderr: bad input file") !=
        std::string::npos);
  Json flaky = NodeEntry(nodes, "flaky");
  CHECK(flaky["error_kind"].Str() == "transient");
  CHECK(flaky["attempts"].Int() == 2);
  CHECK(flaky["error"].Str().find("exited with code 7; stderr: try again") != std::string::npos);
  Json missing = NodeEntry(nodes, "missing");
  CHECK(missing["error_kind"].Str() == "permanent");
  CHECK(missing["attempts"].Int() == 1);
  CHECK(missing["error"].Str().find("program not found: ./no-such-tool") != std::string::npos);
  Json badcwd = NodeEntry(nodes, "badcwd");
  CHECK(badcwd["error_kind"].Str() == "permanent");
  CHECK(badcwd["error"].Str().find("cwd no/such/dir: No such file or directory") !=
        std::string::npos);
}

TEST_CASE("exec: a timeout kills the program and every process it started" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string pids = box.Path("pids");
  Script(box, "spawner.sh",
         "sleep 100 & echo $! >> " + pids + "\nsleep 100 & echo $! >> " + pids + "\necho $$ >> " +
             pids + "\nwait\n");
  std::string wf = box.Write("slow.lua", R"lua(local keel = require "keel"
return keel.workflow "slow" {
  keel.exec "slow" { command = { "./spawner.sh" }, timeout = 1, kill_grace = 1 },
}
)lua");
  auto started = std::chrono::steady_clock::now();
  Json out = RunJson(box, wf, 1);
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(15));
  Json slow = NodeEntry(box.Show(out["run_id"].Str())["nodes"], "slow");
  CHECK(slow["error_kind"].Str() == "timeout");
  std::istringstream recorded(ReadAll(pids));
  std::vector<pid_t> all;
  for (pid_t pid; recorded >> pid;) all.push_back(pid);
  REQUIRE(all.size() == 3);
  for (pid_t pid : all) {
    CAPTURE(pid);
    bool gone = false;
    for (int i = 0; i < 200 && !(gone = Gone(pid)); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(gone);
  }
}

TEST_CASE(
    "exec: keel.exec inside keel.fn yields and returns code, stdout and stderr, or the "
    "parsed output" *
    doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("inner.lua", R"lua(local keel = require "keel"
return keel.workflow "inner" {
  keel.fn "inner" { run = function(ctx)
    local raw = keel.exec { command = { "sh", "-c", "echo out; echo err >&2; exit 4" } }
    local parsed = keel.exec { command = { "echo", '{"a": [1, 2]}' }, output = "json" }
    local lines = keel.exec { command = { "cat" }, stdin = { x = 1 }, output = "lines" }
    local ok, failure = pcall(keel.exec, { command = { "sh", "-c", "exit 5" },
                                           exit_codes = { [5] = "permanent" } })
    return { code = raw.code, stdout = raw.stdout, stderr = raw.stderr, parsed = parsed,
             lines = lines, ok = ok, failure = tostring(failure) }
  end },
  keel.fn "fails" { optional = true, run = function()
    return keel.exec { command = { "sh", "-c", "exit 9" }, output = "text" }
  end },
}
)lua");
  Json out = RunJson(box, wf, 3);
  Json inner = out["outputs"]["inner"];
  CHECK(inner["code"].Int() == 4);
  CHECK(inner["stdout"].Str() == "out\n");
  CHECK(inner["stderr"].Str() == "err\n");
  CHECK(inner["parsed"].Dump() == R"({"a":[1,2]})");
  CHECK(inner["lines"].Dump() == R"(["{\"x\":1}"])");
  CHECK_FALSE(inner["ok"].Bool());
  CHECK(inner["failure"].Str() == "permanent: sh -c 'exit 5': exited with code 5");
  Json fails = NodeEntry(box.Show(out["run_id"].Str())["nodes"], "fails");
  CHECK(fails["error_kind"].Str() == "transient");
  CHECK(fails["error"].Str().find("exited with code 9") != std::string::npos);
}

TEST_CASE("exec: options are checked at the declaring line, with did-you-mean" *
          doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  struct Case {
    const char* node;
    const char* expected;
  };
  const Case cases[] = {
      {R"(keel.exec "x" { comand = { "true" } })",
       "bad.lua:3: node 'x': unknown option 'comand' (did you mean 'command'?)"},
      {R"(keel.exec "x" { command = "python3 train.py" })",
       "bad.lua:3: node 'x': option 'command' must be a list such as"},
      {R"(keel.exec "x" { command = { "true" }, output = "jsno" })",
       "bad.lua:3: node 'x': option 'output' must be \"text\", \"json\" or \"lines\", got 'jsno'"},
      {R"(keel.exec "x" { command = { "true" }, exit_codes = { [2] = "permanant" } })",
       "unknown kind 'permanant' (did you mean 'permanent'?)"},
      {R"(keel.exec "x" { command = { "true" }, retries = 3 })",
       "unknown option 'retries' (did you mean 'retry'?)"},
      {R"(keel.exec "x" { command = { "echo", "{{deps.prep}}" } })",
       "option 'command': item 2: {{deps.prep}} names no dependency in `after`"},
      {R"(keel.exec "x" { timeout = 5 })", "an exec node needs option 'command'"},
      {R"(keel.exec "x" { command = { "true" }, run = function() end })",
       "option 'run' is for keel.fn nodes"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.node);
    std::string wf = box.Write("bad.lua", std::string("local keel = require \"keel\"\n"
                                                      "return keel.workflow \"bad\" {\n  ") +
                                              c.node + ",\n}\n");
    ExitInfo r = box.KeelDb({"run", wf});
    INFO(r.Describe());
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.expected) != std::string::npos);
  }
}

TEST_CASE(
    "exec: keel.exec { ... } while loading is an unnamed node declaration; declarations "
    "keep their options" *
    doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string wf = box.Write("unnamed.lua", R"lua(local keel = require "keel"
local item = keel.exec { command = { "echo", "{{params.x}}" }, output = "lines", retry = 2 }
assert(getmetatable(item) == "keel.node", "a node declaration")
assert(item.name == "" and item.kind == "exec", "unnamed, of kind exec")
assert(type(item.run) == "function")
-- A declaration keeps its options as they were when it was declared.
local command = { "echo", "kept" }
local copy = keel.exec "copy" { command = command }
command[2] = "changed"
return keel.workflow "unnamed" {
  keel.fn "ok" { run = function() return true end },
  copy,
}
)lua");
  Json out = RunJson(box, wf, 0);
  CHECK(out["outputs"]["copy"].Str() == "kept\n");
}

TEST_CASE("exec: resume does not run a recorded exec node again" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string count = box.Path("count");
  Script(box, "once.sh", "echo ran >> " + count + "\necho '{\"value\": 42}'\n");
  box.Write("fail", "1");
  std::string wf = box.Write("resume.lua", R"lua(local keel = require "keel"
return keel.workflow "resume" {
  keel.exec "once" { command = { "./once.sh" }, output = "json" },
  keel.fn "check" { after = { "once" }, run = function(ctx)
    local flag = io.open("fail")
    if flag then flag:close() error("not yet") end
    return ctx.deps.once.value
  end },
}
)lua");
  ExitInfo first = box.KeelDb({"run", wf}, kPrompt);
  INFO(first.Describe());
  REQUIRE(first.exit_code == 1);
  CHECK(ReadAll(count) == "ran\n");
  std::remove(box.Path("fail").c_str());
  ExitInfo resumed = box.KeelDb({"resume", RunIdFromStderr(first.err), "--json"}, kPrompt);
  INFO(resumed.Describe());
  REQUIRE(resumed.exit_code == 0);
  CHECK(Json::Parse(resumed.out)["outputs"]["check"].Int() == 42);
  CHECK(ReadAll(count) == "ran\n");
}

TEST_CASE("exec: an interrupted keel kills the programs it runs" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  std::string pids = box.Path("pids");
  Script(box, "stuck.sh", "echo $$ >> " + pids + "\nsleep 100 & echo $! >> " + pids + "\nwait\n");
  std::string wf = box.Write("stuck.lua", R"lua(local keel = require "keel"
return keel.workflow "stuck" {
  keel.exec "stuck" { command = { "./stuck.sh" } },
}
)lua");
  for (int signal_number : {SIGINT, SIGTERM}) {
    CAPTURE(signal_number);
    std::remove(pids.c_str());
    auto keel = box.StartDb({"run", wf});
    std::vector<pid_t> all;
    for (int i = 0; i < 2000 && all.size() < 2; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      std::istringstream recorded(ReadAll(pids));
      all.clear();
      for (pid_t pid; recorded >> pid;) all.push_back(pid);
    }
    REQUIRE(all.size() == 2);
    kill(keel->pid(), signal_number);
    ExitInfo r = keel->Wait(kPrompt);
    INFO(r.Describe());
    CHECK(r.signal == signal_number);
    for (pid_t pid : all) {
      CAPTURE(pid);
      bool gone = false;
      for (int i = 0; i < 200 && !(gone = Gone(pid)); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      CHECK(gone);
    }
  }
}

TEST_CASE("examples: exec.lua lists a directory three ways" * doctest::timeout(kTimeoutS)) {
  Sandbox box(KEEL_BIN);
  const std::string example = std::string(KEEL_SOURCE_DIR) + "/examples/exec.lua";
  box.Write("alpha.txt", "a\n");
  box.Write("beta.txt", "b\n");
  Json out = RunJson(box, example, 0, {"-p", "dir=" + box.dir()});
  Json report = out["outputs"]["report"];
  CHECK(report["files"].Int() >= 2);
  CHECK(report["first"].Str() == "ALPHA.TXT");
  CHECK(report["kilobytes"].IsNumber());
  ExitInfo missing = box.KeelDb({"run", example, "-p", "dir=" + box.Path("nope")}, kPrompt);
  INFO(missing.Describe());
  CHECK(missing.exit_code == 1);
  CHECK(missing.out.find("error: listing: permanent: ls -1 " + box.Path("nope") +
                         ": exited with code 2; stderr: ") != std::string::npos);
}

}  // namespace
}  // namespace keel::testing
