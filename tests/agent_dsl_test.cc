// The agent half of the DSL: keel.agent, keel.provider and the workflow
// option `budget`, checked at the declaring line and read back into C++.

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "lua.hpp"
#include "scripts/script_state.h"

namespace {

using keel::ScriptDeclarations;
using keel::ScriptSource;
using keel::ScriptState;

constexpr const char* kChunk = "agents.lua";
constexpr const char* kHeader = "local keel = require 'keel'\n";  // line 1

// A script run in a fresh state, with what it declared.
struct Loaded {
  std::unique_ptr<ScriptState> state;
  ScriptDeclarations declarations;
};

// Runs `text`, which must succeed.
Loaded Load(const std::string& text) {
  Loaded loaded;
  auto state = ScriptState::Create(ScriptSource{kChunk, text, ""}, 64u << 20, &loaded.declarations);
  REQUIRE_MESSAGE(state.ok(), state.status().ToString());
  loaded.state = std::move(state).value();
  return loaded;
}

// The error of running `text`, which must fail.
std::string Error(const std::string& text) {
  ScriptDeclarations declarations;
  auto state = ScriptState::Create(ScriptSource{kChunk, text, ""}, 64u << 20, &declarations);
  REQUIRE_FALSE(state.ok());
  return state.status().message();
}

// The error of declaring, on line 3, keel.agent 'a' with `options` (Lua
// source of the fields between the braces).
std::string AgentError(const std::string& options) {
  return Error(std::string(kHeader) + "return keel.workflow 'w' {\n  keel.agent 'a' { " + options +
               " },\n}\n");
}

// The error of declaring, on line 2, keel.provider 'p' with `options`.
std::string ProviderError(const std::string& options) {
  return Error(std::string(kHeader) + "keel.provider 'p' { " + options + " }\n" +
               "return keel.workflow 'w' { keel.fn 'f' { run = print } }\n");
}

constexpr const char* kFullAgent = R"(local keel = require 'keel'
local fast = keel.provider "fast" { kind = "mock" }
return keel.workflow "w" {
  keel.agent "draft" {
    provider = fast, model = "m1", system = "be brief", prompt = "write {{params.topic}}",
    messages = { { role = "user", content = "hi" }, { role = "assistant", content = "hello" } },
    temperature = 0.5, max_tokens = 200, max_turns = 4, timeout = 30,
    output = { type = "object", properties = { title = { type = "string" } } },
    hedge = { delay = 1.5 },
    tools = {
      search = { description = "web search",
                 parameters = { type = "object", properties = { q = { type = "string" } } },
                 run = function(args) return "found" end },
      clock = { run = function() return 12 end },
    },
  },
}
)";

TEST_CASE("a full agent declaration is read back") {
  Loaded loaded = Load(kFullAgent);
  REQUIRE(loaded.declarations.workflows.size() == 1);
  REQUIRE(loaded.declarations.workflows[0].nodes.size() == 1);
  const keel::NodeDeclaration& node = loaded.declarations.workflows[0].nodes[0];
  CHECK(node.kind == "agent");
  CHECK(node.where == "agents.lua:4");
  CHECK_FALSE(node.has_run);
  CHECK(*node.policy == R"({"timeout":30})");
  REQUIRE(node.agent);
  CHECK(*node.agent ==
        R"({"hedge":{"delay":1.5,"max":2},"max_tokens":200,"max_turns":4,)"
        R"("messages":[{"content":"hi","role":"user"},{"content":"hello","role":"assistant"}],)"
        R"("model":"m1","output":{"properties":{"title":{"type":"string"}},"type":"object"},)"
        R"("prompt":"write {{params.topic}}","provider":"fast","system":"be brief",)"
        R"("temperature":0.5,"tools":{"clock":{"description":"","parameters":{"properties":{},)"
        R"("type":"object"}},"search":{"description":"web search","parameters":{"properties":)"
        R"({"q":{"type":"string"}},"type":"object"}}}})");

  const keel::NodeFunctions& functions = loaded.state->functions(0);
  CHECK(functions.run == keel::kNoFunction);
  REQUIRE(functions.tools.size() == 2);
  CHECK(functions.tools[0].first == "clock");
  CHECK(functions.tools[1].first == "search");
  lua_State* L = loaded.state->main();
  for (const auto& tool : functions.tools) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, tool.second);
    CHECK_MESSAGE(lua_isfunction(L, -1), tool.first);
    lua_pop(L, 1);
  }
}

TEST_CASE("fn nodes keep kind fn and no agent JSON") {
  Loaded loaded =
      Load(std::string(kHeader) + "return keel.workflow 'w' { keel.fn 'f' { run = print } }\n");
  const keel::NodeDeclaration& node = loaded.declarations.workflows[0].nodes[0];
  CHECK(node.kind == "fn");
  CHECK_FALSE(node.agent);
  CHECK(node.has_run);
  CHECK(loaded.state->functions(0).tools.empty());
}

TEST_CASE("a provider is read back with every field") {
  Loaded loaded = Load(std::string(kHeader) + R"(keel.provider "fast" {
  kind = "openai", base_url = "http://localhost:9/v1", model = "gpt-4o-mini",
  api_key_env = "OPENAI_API_KEY", max_concurrency = 8, rpm = 60, tpm = 1e5,
  prices = { input = 0.15, output = 0.6 }, headers = { ["X-Team"] = "a", ["OpenAI-Beta"] = "b" },
}
keel.provider "slow" { kind = "mock", latency = 0.25 }
keel.provider "claude" { kind = "anthropic", ca_file = "certs/ca.pem", http2 = false }
return keel.workflow "w" { keel.fn "f" { run = print } }
)");
  const auto& providers = loaded.declarations.providers;
  REQUIRE(providers.size() == 3);
  const keel::ProviderConfig& fast = providers[0];
  CHECK(fast.name == "fast");
  CHECK(fast.where == "agents.lua:2");
  CHECK(fast.kind == "openai");
  CHECK(fast.base_url == "http://localhost:9/v1");
  CHECK(fast.model == "gpt-4o-mini");
  CHECK(fast.api_key_env == "OPENAI_API_KEY");
  CHECK(fast.max_concurrency == 8);
  CHECK(fast.rpm == 60);
  CHECK(fast.tpm == 1e5);
  CHECK(fast.input_price == 0.15);
  CHECK(fast.output_price == 0.6);
  REQUIRE(fast.headers.size() == 2);
  CHECK(fast.headers[0] == std::pair<std::string, std::string>{"OpenAI-Beta", "b"});
  CHECK(fast.headers[1] == std::pair<std::string, std::string>{"X-Team", "a"});
  CHECK(fast.latency == 0);
  CHECK(fast.ca_file.empty());
  CHECK(fast.http2);

  CHECK(providers[1].kind == "mock");
  CHECK(providers[1].base_url.empty());
  CHECK(providers[1].latency == 0.25);
  CHECK(providers[1].max_concurrency == 0);
  CHECK(providers[2].base_url == "https://api.anthropic.com/v1");
  CHECK(providers[2].api_key_env.empty());
  CHECK(providers[2].ca_file == "certs/ca.pem");
  CHECK_FALSE(providers[2].http2);
}

TEST_CASE("the openai base_url defaults and keel.provider returns the name") {
  Loaded loaded = Load(std::string(kHeader) +
                       "local name = keel.provider 'o' { kind = 'openai' }\n"
                       "assert(name == 'o')\n"
                       "return keel.workflow 'w' { keel.fn 'f' { run = print } }\n");
  REQUIRE(loaded.declarations.providers.size() == 1);
  CHECK(loaded.declarations.providers[0].base_url == "https://api.openai.com/v1");
}

TEST_CASE("the workflow budget is read back") {
  auto budget = [](const std::string& option) {
    Loaded loaded = Load(std::string(kHeader) + "return keel.workflow 'w' { " + option +
                         " keel.fn 'f' { run = print } }\n");
    return loaded.declarations.workflows[0].budget;
  };
  keel::Budget both = budget("budget = { tokens = 5000, cost = 0.25 },");
  CHECK(both.max_tokens == 5000);
  CHECK(both.max_cost == 0.25);
  keel::Budget tokens = budget("budget = { tokens = 10 },");
  CHECK(tokens.max_tokens == 10);
  CHECK(tokens.max_cost == 0);
  CHECK_FALSE(budget("").limited());
}

TEST_CASE("agent option mistakes are reported at the declaring line") {
  const std::string at = "agents.lua:3: node 'a': ";
  const std::string ok = "provider = 'p', prompt = 'x', ";
  CHECK(AgentError("prompt = 'x'") ==
        at + "an agent needs option 'provider' (the name of a keel.provider)");
  CHECK(AgentError("provider = ''") ==
        at + "option 'provider' must be a non-empty string, got string");
  CHECK(AgentError("provider = 'p'") == at + "an agent needs option 'prompt' (or 'messages')");
  CHECK(AgentError(ok + "run = print") ==
        at + "option 'run' is for keel.fn nodes; an agent's work is its prompt");
  CHECK(AgentError(ok + "temperature = 'hot'") ==
        at + "option 'temperature' must be a number between 0 and 2, got string");
  CHECK(AgentError(ok + "temperature = 2.5") ==
        at + "option 'temperature' must be a number between 0 and 2, got 2.5");
  CHECK(AgentError(ok + "system = 1") == at + "option 'system' must be a string, got 1");
  CHECK(AgentError(ok + "max_tokens = 1.5") ==
        at + "option 'max_tokens' must be a whole number from 1 to 2147483647, got 1.5");
  CHECK(AgentError(ok + "max_tokens = 2^40") ==
        at + "option 'max_tokens' must be a whole number from 1 to 2147483647, got 1099511627776");
  CHECK(AgentError(ok + "max_turns = 0") ==
        at + "option 'max_turns' must be a whole number from 1 to 2147483647, got 0");
  CHECK(AgentError(ok + "temprature = 1") ==
        at + "unknown option 'temprature' (did you mean 'temperature'?)");
  CHECK(AgentError(ok + "promt = 'y'") == at + "unknown option 'promt' (did you mean 'prompt'?)");
}

TEST_CASE("agent messages, output and hedge are checked") {
  const std::string at = "agents.lua:3: node 'a': ";
  const std::string ok = "provider = 'p', ";
  CHECK(AgentError(ok + "messages = 'hi'") ==
        at + "option 'messages' must be a non-empty list of { role = ..., content = ... }, "
             "got string");
  CHECK(AgentError(ok + "messages = { { role = 'tool', content = 'x' } }") ==
        at + "option 'messages': item 1: field 'role' must be \"system\", \"user\" or "
             "\"assistant\", got string");
  CHECK(AgentError(ok + "messages = { { role = 'user', content = 'x' }, { role = 'user' } }") ==
        at + "option 'messages': item 2: field 'content' is required (a string)");
  CHECK(AgentError(ok + "messages = { { role = 'user', text = 'x' } }") ==
        at + "option 'messages': item 1: unknown field 'text'");
  CHECK(AgentError(ok + "prompt = 'x', output = 'xml'") ==
        at + "option 'output' must be \"text\", \"json\" or a JSON schema (a table), got string");
  CHECK(AgentError(ok + "prompt = 'x', output = { 'a', 'b' }") ==
        at + "option 'output': a JSON schema is an object, not a list");
  CHECK(AgentError(ok + "prompt = 'x', output = { f = print }") ==
        at + "option 'output': at .f: a function cannot be JSON");
  // The schema itself is checked when the script loads, not at the first reply.
  CHECK(AgentError(ok + "prompt = 'x', output = { type = 5 }") ==
        at + "option 'output': at type: must be a type name (string, number, integer, boolean, "
             "object, array, null) or a list of them");
  CHECK(AgentError(ok + "prompt = 'x', output = { type = 'object', required = {} }") ==
        at + "option 'output': at required: must be a list of property names (an empty table "
             "is an object here; write keel.array() for an empty list)");
  CHECK(AgentError(ok + "prompt = 'x', output = { type = 'object', properties = { n = 'number' } "
                        "}") ==
        at + "option 'output': at properties.n: a schema must be a table (a JSON object)");
  CHECK(AgentError(ok + "prompt = 'x', output = { type = 'array', items = { type = 'string' }, "
                        "minItems = -1 }") ==
        at + "option 'output': at minItems: must be a whole number, 0 or more");
  CHECK(AgentError(ok + "prompt = 'x', output = { anyOf = keel.array() }") ==
        at + "option 'output': at anyOf: must be a non-empty list of schemas");
  // Unknown keywords pass, as JSON Schema says.
  Load(std::string(kHeader) + "return keel.workflow 'w' {\n  keel.agent 'a' { " + ok +
       "prompt = 'x', output = { type = 'object', required = keel.array(), ['x-vendor'] = { 1 }, "
       "properties = { a = { enum = { 1, 2 } } } } },\n}\n");
  CHECK(AgentError(ok + "prompt = 'x', hedge = 2") ==
        at + "option 'hedge' must be { delay = seconds, max = n }, got 2");
  CHECK(AgentError(ok + "prompt = 'x', hedge = { max = 3 }") ==
        at + "option 'hedge': field 'delay' is required (a number of seconds above 0 and at "
             "most 1e9)");
  CHECK(AgentError(ok + "prompt = 'x', hedge = { delay = -1 }") ==
        at + "option 'hedge': field 'delay' must be a number of seconds above 0 and at most 1e9, "
             "got -1");
  CHECK(AgentError(ok + "prompt = 'x', hedge = { delay = math.huge }") ==
        at + "option 'hedge': field 'delay' must be a number of seconds above 0 and at most 1e9, "
             "got inf");
  CHECK(AgentError(ok + "prompt = 'x', hedge = { delay = 1, max = 1 }") ==
        at + "option 'hedge': field 'max' must be a whole number from 2 to 2147483647, got 1");
  CHECK(AgentError(ok + "prompt = 'x', hedge = { dela = 1 }") ==
        at + "option 'hedge': unknown field 'dela' (did you mean 'delay'?)");
}

TEST_CASE("agent tools are checked") {
  const std::string at = "agents.lua:3: node 'a': ";
  const std::string ok = "provider = 'p', prompt = 'x', ";
  CHECK(AgentError(ok + "tools = print") ==
        at + "option 'tools' must be a table of NAME = { description, parameters, run }, "
             "got function");
  CHECK(AgentError(ok + "tools = { ['web search'] = { run = print } }") ==
        at + "option 'tools': invalid tool 'web search': use 1 to 64 letters, digits, '_' and '-'");
  CHECK(AgentError(ok + "tools = { ['" + std::string(65, 'x') + "'] = { run = print } }")
            .find("use 1 to 64 letters") != std::string::npos);
  CHECK(AgentError(ok + "tools = { print }") ==
        at + "option 'tools': tools are NAME = { ... } pairs; found a number key");
  CHECK(AgentError(ok + "tools = { search = print }") ==
        at + "option 'tools': tool 'search' must be a table { description, parameters, run }, "
             "got function");
  CHECK(AgentError(ok + "tools = { search = { description = 'x' } }") ==
        at + "option 'tools': tool 'search': field 'run' is required (a function)");
  CHECK(AgentError(ok + "tools = { search = { run = print, description = 1 } }") ==
        at + "option 'tools': tool 'search': field 'description' must be a string, got 1");
  CHECK(AgentError(ok + "tools = { search = { run = print, parameters = { 1 } } }") ==
        at + "option 'tools': tool 'search': field 'parameters': a JSON schema is an object, "
             "not a list");
  CHECK(AgentError(ok + "tools = { search = { run = print, parameters = { type = 'object', "
                        "properties = { q = { type = 'text' } } } } }") ==
        at + "option 'tools': tool 'search': field 'parameters': at properties.q.type: must be "
             "a type name (string, number, integer, boolean, object, array, null) or a list of "
             "them");
  CHECK(AgentError(ok + "tools = { search = { runn = print } }") ==
        at + "option 'tools': tool 'search': unknown field 'runn' (did you mean 'run'?)");
}

TEST_CASE("agent options on keel.fn, and keel.agent misuse") {
  CHECK(Error(std::string(kHeader) +
              "return keel.workflow 'w' {\n  keel.fn 'f' { run = print, prompt = 'x' } }\n") ==
        "agents.lua:3: node 'f': option 'prompt' is for keel.agent nodes (keel.agent \"name\" { "
        "... })");
  CHECK(Error(std::string(kHeader) + "return keel.workflow 'w' {\n  keel.agent 'a' }\n") ==
        "agents.lua:2: workflow 'w': item 1 is keel.agent \"a\" without its { ... } of options");
  CHECK(Error(std::string(kHeader) + "keel.agent(42)\n") ==
        "agents.lua:2: keel.agent expects a node name (a string), got number");
  CHECK(Error(std::string(kHeader) + "keel.agent 'a b'\n") ==
        "agents.lua:2: invalid node name 'a b': use letters, digits, '_', '.' and '-', starting "
        "with a letter or '_'");
}

TEST_CASE("provider option mistakes are reported at the declaring line") {
  const std::string at = "agents.lua:2: provider 'p': ";
  CHECK(ProviderError("model = 'm'") ==
        at + "option 'kind' is required (\"openai\", \"anthropic\" or \"mock\")");
  CHECK(ProviderError("kind = 'azure'") ==
        at + "option 'kind' must be \"openai\", \"anthropic\" or \"mock\", got string");
  CHECK(ProviderError("kind = 'mock', mdel = 'm'") ==
        at + "unknown option 'mdel' (did you mean 'model'?)");
  CHECK(ProviderError("kind = 'openai', max_concurency = 2") ==
        at + "unknown option 'max_concurency' (did you mean 'max_concurrency'?)");
  CHECK(ProviderError("kind = 'openai', base_url = 1") ==
        at + "option 'base_url' must be a string, got 1");
  CHECK(ProviderError("kind = 'openai', api_key_env = '1KEY'") ==
        at + "option 'api_key_env' must name an environment variable (letters, digits and '_', "
             "not starting with a digit), got string");
  CHECK(ProviderError("kind = 'openai', max_concurrency = 0") ==
        at + "option 'max_concurrency' must be a whole number from 1 to 2147483647, got 0");
  CHECK(ProviderError("kind = 'openai', rpm = -1") ==
        at + "option 'rpm' must be a finite number above 0, got -1");
  CHECK(ProviderError("kind = 'openai', rpm = 0/0") ==
        at + "option 'rpm' must be a finite number above 0, got nan");
  CHECK(ProviderError("kind = 'openai', tpm = 'many'") ==
        at + "option 'tpm' must be a finite number above 0, got string");
  CHECK(ProviderError("kind = 'openai', prices = { input = -1 }") ==
        at + "option 'prices': field 'input' must be a price per million tokens from 0 to 1e6, "
             "got -1");
  // Prices near the largest double made every cost infinite.
  CHECK(ProviderError("kind = 'openai', prices = { output = 1e308 }") ==
        at + "option 'prices': field 'output' must be a price per million tokens from 0 to 1e6, "
             "got 1e+308");
  CHECK(ProviderError("kind = 'openai', prices = { inpt = 1 }") ==
        at + "option 'prices': unknown field 'inpt' (did you mean 'input'?)");
  CHECK(ProviderError("kind = 'openai', latency = 1") ==
        at + "option 'latency' is for mock providers");
  CHECK(ProviderError("kind = 'mock', latency = -1") ==
        at + "option 'latency' must be a number of seconds from 0 to 1e9, got -1");
  CHECK(ProviderError("kind = 'openai', headers = { ['X-A'] = 'a\\r\\nB: c' }") ==
        at + "option 'headers': header 'X-A' must be a string without line breaks, got string");
  CHECK(ProviderError("kind = 'openai', headers = { ['bad name'] = 'a' }") ==
        at + "option 'headers': header names must be HTTP tokens (letters, digits, '-', ...)");
  CHECK(ProviderError("kind = 'openai', http2 = 'yes'") ==
        at + "option 'http2' must be true or false, got string");
  CHECK(ProviderError("kind = 'openai', ca_file = ''") ==
        at + "option 'ca_file' must be a non-empty string, got string");
}

TEST_CASE("literal keys are refused without echoing them") {
  const std::string secret = "sk-live-0123456789abcdef";
  const std::string refusal = "keys are read from the environment: use api_key_env = \"NAME\"";
  for (const char* option : {"api_key", "apikey", "key", "token"}) {
    std::string message =
        ProviderError("kind = 'openai', " + std::string(option) + " = '" + secret + "'");
    CHECK(message == "agents.lua:2: provider 'p': option '" + std::string(option) +
                         "' is refused: " + refusal);
    CHECK(message.find(secret) == std::string::npos);
  }
  for (const char* header : {"Authorization", "x-api-key", "X-API-Key"}) {
    std::string message = ProviderError("kind = 'openai', headers = { ['" + std::string(header) +
                                        "'] = 'Bearer " + secret + "' }");
    CHECK(message == "agents.lua:2: provider 'p': option 'headers': header '" +
                         std::string(header) + "' is refused: " + refusal);
    CHECK(message.find(secret) == std::string::npos);
  }
  std::string message = ProviderError("kind = 'openai', api_key_env = '" + secret + "'");
  CHECK(message.find(secret) == std::string::npos);
}

TEST_CASE("keel.provider names, tables, duplicates and load-time use") {
  CHECK(Error(std::string(kHeader) + "keel.provider 'p' { kind = 'mock' }\n" +
              "keel.provider 'p' { kind = 'mock' }\n") ==
        "agents.lua:3: provider 'p' is declared twice (first at agents.lua:2)");
  CHECK(Error(std::string(kHeader) + "keel.provider(1)\n") ==
        "agents.lua:2: keel.provider expects a provider name (letters, digits, '_', '.' and "
        "'-'), got a number");
  CHECK(Error(std::string(kHeader) + "keel.provider 'p' 'x'\n") ==
        "agents.lua:2: provider 'p': expects a table of options, got string");
  CHECK(Error(std::string(kHeader) + "keel.provider 'p' { kind = 'mock', [1] = 2 }\n") ==
        "agents.lua:2: provider 'p': options are name = value pairs; found a number key");
}

TEST_CASE("keel.provider is refused once the script has loaded") {
  Loaded loaded = Load(std::string(kHeader) +
                       "function late() keel.provider 'late' { kind = 'mock' } end\n"
                       "return keel.workflow 'w' { keel.fn 'f' { run = print } }\n");
  keel::ActiveNode active;
  loaded.state->SetActive(&active);
  lua_State* L = loaded.state->main();
  lua_getglobal(L, "late");
  REQUIRE(lua_pcall(L, 0, 0, 0) != LUA_OK);
  CHECK(std::string(lua_tostring(L, -1)) ==
        "agents.lua:2: provider 'late': keel.provider can only be used while the script loads");
  lua_pop(L, 1);
  loaded.state->SetActive(nullptr);
}

TEST_CASE("budget mistakes are reported at the workflow") {
  auto error = [](const std::string& option) {
    return Error(std::string(kHeader) + "return keel.workflow 'w' { budget = " + option +
                 ", keel.fn 'f' { run = print } }\n");
  };
  const std::string at = "agents.lua:2: workflow 'w': ";
  CHECK(error("100") == at + "option 'budget' must be { tokens = n, cost = x }, got 100");
  CHECK(error("{}") == at + "option 'budget' must set tokens, cost or both");
  CHECK(error("{ tokens = 1.5 }") ==
        at + "option 'budget': field 'tokens' must be a whole number, 1 or more, got 1.5");
  CHECK(error("{ cost = 0 }") ==
        at + "option 'budget': field 'cost' must be a finite number above 0, got 0");
  CHECK(error("{ cost = math.huge }") ==
        at + "option 'budget': field 'cost' must be a finite number above 0, got inf");
  CHECK(error("{ tokns = 5 }") ==
        at + "option 'budget': unknown field 'tokns' (did you mean 'tokens'?)");
  CHECK(Error(std::string(kHeader) + "return keel.workflow 'w' { budgt = {} }\n") ==
        at + "unknown option 'budgt' (did you mean 'budget'?)");
}

}  // namespace
