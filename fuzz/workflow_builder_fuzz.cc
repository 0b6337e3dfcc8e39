// Fuzzes the workflow loader's declaration checks and validation
// (scripts/declaration_reader.cc, node_options.cc, option_values.cc,
// agent_loader.cc, engine validation) rather than Lua's syntax: the input
// picks a well-formed workflow file — providers, helper workflows and a
// main workflow whose nodes have names, `after` lists, templates and
// options with odd values (NaN, huge counts, wrong types, unknown keys,
// cycles, missing nodes) — which is then loaded as workflow_script_fuzz
// loads text.

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz/script_bound.h"

namespace {

const char* const kNames[] = {"a", "b", "c", "d", "output", "x-1", "_y.z", "main", "h1", "p"};
const char* const kOptions[] = {
    "after",      "when",        "optional", "run",      "timeout", "total_timeout",
    "retry",      "circuit",     "fallback", "join",     "memory",  "max_concurrency",
    "provider",   "prompt",      "system",   "messages", "model",   "temperature",
    "max_tokens", "max_turns",   "output",   "hedge",    "tools",   "kind",
    "base_url",   "api_key_env", "rpm",      "tpm",      "prices",  "headers",
    "latency",    "http2",       "params",   "defaults", "budget",  "retry_budget",
    "api_key"};
const char* const kInner[] = {
    "attempts",  "base",        "max",          "factor",       "jitter",
    "on",        "key",         "failures",     "failure_rate", "window",
    "min_calls", "cooldown",    "max_cooldown", "probes",       "successes",
    "quorum",    "best_effort", "limit",        "delay",        "role",
    "content",   "description", "parameters",   "type",         "properties",
    "required",  "items",       "tokens",       "cost",         "input",
    "output",    "run",         "enum",         "minimum",      "additionalProperties"};
const char* const kNumbers[] = {"0",
                                "-1",
                                "1",
                                "2",
                                "3",
                                "0.5",
                                "1e9",
                                "1e9 + 1",
                                "2147483647",
                                "2147483648",
                                "9007199254740993",
                                "math.maxinteger",
                                "math.mininteger",
                                "-0.0",
                                "0/0",
                                "1/0",
                                "-1/0",
                                "1e308",
                                "1e-320",
                                "1025",
                                "30"};
const char* const kStrings[] = {"",
                                "all",
                                "any",
                                "full",
                                "none",
                                "equal",
                                "decorrelated",
                                "transient",
                                "timeout",
                                "permanent",
                                "rate_limited",
                                "64MB",
                                "1GB",
                                "0MB",
                                "-1MB",
                                "1e30MB",
                                "text",
                                "json",
                                "mock",
                                "openai",
                                "anthropic",
                                "user",
                                "assistant",
                                "system",
                                "string",
                                "object",
                                "integer",
                                "OPENAI_API_KEY",
                                "http://127.0.0.1:9/v1",
                                "ftp://x",
                                "{{params.topic}}",
                                "{{deps.a}}",
                                "{{deps.b.x.0}}",
                                "{{",
                                "}}",
                                "{{ params }}",
                                "{{deps.zz}}",
                                "[[mock:fault=503]]",
                                "\\0",
                                "\\xff\\xfe",
                                "a.b",
                                "1a"};

class Builder {
 public:
  explicit Builder(FuzzedDataProvider& in) : in_(in) {}

  std::string Script() {
    std::string s = "local keel = require \"keel\"\n";
    int providers = in_.ConsumeIntegralInRange(0, 2);
    for (int i = 0; i < providers; ++i) {
      s += "keel.provider " + Quoted(i == 0 ? "p" : Name()) +
           " { kind = " + Quoted(Pick(kStrings)) + ", " + Options(2) + "}\n";
    }
    int helpers = in_.ConsumeIntegralInRange(0, 2);
    for (int i = 0; i < helpers; ++i) {
      s += "local h" + std::to_string(i + 1) + " = keel.workflow " +
           Quoted(i == 0 ? "h1" : Name()) + " {\n" + Body() + "}\n";
    }
    s += in_.ConsumeBool() ? "return keel.workflow \"main\" {\n"
                           : "return keel.workflow (" + Quoted(Name()) + ") {\n";
    s += Body();
    s += "}\n";
    return s;
  }

 private:
  template <size_t N>
  const char* Pick(const char* const (&items)[N]) {
    return items[in_.ConsumeIntegralInRange<size_t>(0, N - 1)];
  }

  std::string Quoted(const std::string& text) { return "\"" + text + "\""; }

  std::string Name() {
    if (in_.ConsumeIntegralInRange(0, 15) == 0) {
      std::string raw = in_.ConsumeRandomLengthString(8);
      std::string escaped;
      for (unsigned char c : raw) escaped += "\\" + std::to_string(c);
      return escaped;
    }
    return Pick(kNames);
  }

  std::string Value(int depth) {
    switch (in_.ConsumeIntegralInRange(0, depth > 0 ? 9 : 5)) {
      case 0:
      case 1:
        return Pick(kNumbers);
      case 2:
        return Quoted(Pick(kStrings));
      case 3:
        return in_.ConsumeBool() ? "true" : "false";
      case 4:
        return "function(ctx) return 1 end";
      case 5:
        return in_.ConsumeBool() ? "h1" : "keel.array()";
      case 6:
        return "{ " + Options(depth - 1) + "}";
      case 7:
        return "{ " + Inner(depth - 1) + "}";
      case 8: {
        std::string list = "{ ";
        int n = in_.ConsumeIntegralInRange(0, 4);
        for (int i = 0; i < n; ++i) list += Value(depth - 1) + ", ";
        return list + "}";
      }
      default:
        return "{ " + Quoted(Name()) + ", " + Quoted(Name()) + " }";
    }
  }

  std::string Inner(int depth) {
    std::string s;
    int n = in_.ConsumeIntegralInRange(0, 4);
    for (int i = 0; i < n; ++i) s += std::string(Pick(kInner)) + " = " + Value(depth) + ", ";
    return s;
  }

  std::string Options(int depth) {
    std::string s;
    int n = in_.ConsumeIntegralInRange(0, 5);
    for (int i = 0; i < n; ++i) s += std::string(Pick(kOptions)) + " = " + Value(depth) + ", ";
    return s;
  }

  std::string After() {
    int n = in_.ConsumeIntegralInRange(0, 3);
    if (n == 1 && in_.ConsumeBool()) return "after = " + Quoted(Name()) + ", ";
    std::string s = "after = { ";
    for (int i = 0; i < n; ++i) s += Quoted(Name()) + ", ";
    return s + "}, ";
  }

  std::string Node() {
    std::string name = Quoted(Name());
    switch (in_.ConsumeIntegralInRange(0, 3)) {
      case 0:
      case 1:
        return "  keel.fn " + name + " { " + After() + "run = function(ctx) return 1 end, " +
               Options(2) + "},\n";
      case 2:
        return "  keel.agent " + name + " { " + After() + "provider = \"p\", prompt = " +
               Quoted(std::string(Pick(kStrings)) + Pick(kStrings)) + ", " + Options(2) + "},\n";
      default:
        return "  keel.agent " + name + " { " + After() + Options(3) + "},\n";
    }
  }

  std::string Body() {
    std::string s;
    if (in_.ConsumeBool()) s += "  params = { topic = \"t\", " + Inner(1) + "},\n";
    if (in_.ConsumeBool()) s += "  defaults = { " + Options(2) + "},\n";
    if (in_.ConsumeIntegralInRange(0, 3) == 0) s += "  budget = { " + Inner(1) + "},\n";
    int nodes = in_.ConsumeIntegralInRange(0, 6);
    for (int i = 0; i < nodes; ++i) s += Node();
    return s;
  }

  FuzzedDataProvider& in_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  std::string script = Builder(in).Script();
  if (getenv("KEEL_FUZZ_PRINT") != nullptr) fprintf(stderr, "%s\n", script.c_str());
  keel::fuzz::LoadScript(script);
  return 0;
}
