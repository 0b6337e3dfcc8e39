#include "scripts/workflow_loader.h"

#include <sys/stat.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>

#include "engine/node_policy.h"
#include "engine/dynamic_node.h"
#include "engine/escalation.h"
#include "scripts/agent_loader.h"
#include "scripts/dynamic_functions.h"
#include "scripts/function_node.h"
#include "scripts/lua_alloc.h"
#include "scripts/lua_state_pool.h"
#include "scripts/sha256.h"
#include "scripts/wait_loader.h"

namespace keel {
namespace {

Status ReadFile(const std::string& path, std::string* text) {
  struct stat info;
  if (stat(path.c_str(), &info) != 0) {
    return Status::Error(ErrorKind::kPermanent, path + ": cannot open: " + strerror(errno));
  }
  if (S_ISDIR(info.st_mode)) {
    return Status::Error(ErrorKind::kPermanent, path + ": is a directory, not a script");
  }
  if (!S_ISREG(info.st_mode)) {
    return Status::Error(ErrorKind::kPermanent,
                         path + ": is not a regular file (a script must be one)");
  }
  if (static_cast<uint64_t>(info.st_size) > kMaxScriptBytes) {
    return Status::Error(ErrorKind::kPermanent, path + ": is " + std::to_string(info.st_size) +
                                                    " bytes; a script may be at most " +
                                                    FormatMiB(kMaxScriptBytes) + " (" +
                                                    std::to_string(kMaxScriptBytes) + " bytes)");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::Error(ErrorKind::kPermanent, path + ": cannot open: " + strerror(errno));
  }
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) {
    return Status::Error(ErrorKind::kPermanent, path + ": cannot read: " + strerror(errno));
  }
  *text = std::move(bytes).str();
  if (text->size() > kMaxScriptBytes) {  // it grew after stat
    return Status::Error(ErrorKind::kPermanent,
                         path + ": a script may be at most " + FormatMiB(kMaxScriptBytes));
  }
  return Status::Ok();
}

std::string AbsolutePath(const std::string& path) {
  char* real = realpath(path.c_str(), nullptr);
  if (real == nullptr) return path;
  std::string absolute = real;
  free(real);
  return absolute;
}

// The files of the modules `required` (RequiredModules) as the run records
// them: absolute path, text and its hash; each file once.
Status ReadModules(const std::vector<std::pair<std::string, std::string>>& required,
                   std::vector<ScriptModule>* modules) {
  for (const auto& [name, file] : required) {
    ScriptModule module;
    module.name = name;
    module.path = AbsolutePath(file);
    bool seen = false;
    for (const ScriptModule& m : *modules) seen = seen || m.path == module.path;
    if (seen) continue;
    Status read = ReadFile(file, &module.text);
    if (!read.ok()) return read;
    module.sha256 = Sha256Hex(module.text);
    modules->push_back(std::move(module));
  }
  return Status::Ok();
}

}  // namespace

const WorkflowSpec* LoadedScript::Find(const std::string& name) const {
  for (const WorkflowSpec& workflow : workflows) {
    if (workflow.name == name) return &workflow;
  }
  return nullptr;
}

Result<std::shared_ptr<LoadedScript>> LoadWorkflowFile(const std::string& path,
                                                       const LoadOptions& options) {
  auto script = std::make_shared<LoadedScript>();
  Status read = ReadFile(path, &script->info.text);
  if (!read.ok()) return read;
  script->info.path = AbsolutePath(path);
  script->info.sha256 = Sha256Hex(script->info.text);

  ScriptDeclarations declared;
  Clock* clock = options.clock != nullptr ? options.clock : SystemClock();
  script->clock = clock;
  const std::string script_dir = script->info.path.substr(0, script->info.path.rfind('/'));
  auto pool = LuaStatePool::Create(ScriptSource{path, script->info.text, script_dir},
                                   options.memory_limit, clock, &declared);
  if (!pool.ok()) return pool.status();
  std::shared_ptr<HttpLoop> http = options.http;
  if (http == nullptr) {
    try {
      http = std::make_shared<HttpLoop>(clock);
    } catch (const std::system_error& e) {
      return Status::Error(ErrorKind::kPermanent,
                           std::string("cannot start the HTTP loop: ") + e.what());
    }
  }
  auto llm = std::make_shared<LlmClient>(clock, http, options.quotas);
  Status providers = AddProviders(declared.providers, options, script_dir, llm.get());
  if (!providers.ok()) return providers;
  for (const ProviderConfig& declared_provider : declared.providers) {
    if (const ProviderConfig* used = llm->Find(declared_provider.name)) {
      script->providers.push_back(*used);
    }
  }
  (*pool)->SetServices(llm, http);

  std::string problems;
  auto problem = [&problems](const std::string& line) {
    if (!problems.empty()) problems += '\n';
    problems += line;
  };
  int index = 0;  // of the node in declaration order, across workflows
  const auto inheritance = FallbackInheritance(declared.workflows);
  for (const WorkflowDeclaration& workflow : declared.workflows) {
    auto inherited = inheritance.find(workflow.name);
    WorkflowSpec& spec = script->workflows.emplace_back();
    spec.name = workflow.name;
    spec.where = workflow.where;
    spec.params = workflow.params;
    spec.on_failure = workflow.on_failure;
    const std::string defaults_json = workflow.defaults ? *workflow.defaults : "{}";
    auto budget = ParseRetryBudget(defaults_json);
    auto defaults = ParseDefaultPolicy(defaults_json);
    if (!budget.ok() || !defaults.ok()) {
      problem(workflow.where + ": workflow '" + workflow.name +
              "': " + (budget.ok() ? defaults.status() : budget.status()).message());
      for (const NodeDeclaration& node : workflow.nodes) {
        index += 1 + static_cast<int>(node.inner.size());
      }
      continue;
    }
    spec.retry_budget = *budget;
    spec.budget = workflow.budget;
    spec.nodes.reserve(workflow.nodes.size());
    // The body of a node (or a map's item) of any kind but map, call, loop.
    BodyBuilder build_body = [&](const NodeDeclaration& node, int at,
                                 const NodePolicy& policy) -> std::shared_ptr<NodeBody> {
      if (node.kind == "agent") {
        std::vector<std::string> agent_problems;
        auto body = BuildAgent(
            workflow, inherited != inheritance.end() ? inherited->second : InheritedNames{}, node,
            at, policy.memory, *pool, llm, &agent_problems);
        for (const std::string& line : agent_problems) problem(line);
        return body;
      }
      if (node.has_run) return std::make_shared<FunctionNode>(*pool, at, policy.memory);
      return nullptr;
    };
    for (const NodeDeclaration& node : workflow.nodes) {
      NodeSpec& node_spec = spec.nodes.emplace_back();
      node_spec.name = node.name;
      node_spec.after = node.after;
      node_spec.optional = node.optional;
      node_spec.has_when = node.has_when;
      node_spec.where = node.where;
      node_spec.kind = node.kind;
      // An agent's breaker (and bulkhead) key defaults to its provider.
      const std::string key = node.kind == "agent" ? AgentProvider(node) : node.name;
      auto policy = ParseNodePolicy(key, node.policy ? *node.policy : "{}", *defaults);
      if (policy.ok()) {
        node_spec.policy = std::move(policy).value();
      } else {
        problem(Diagnostic{node.where, node.name, policy.status().message()}.ToString());
      }
      if (node.kind == "wait") {
        BuildWait(node, index, *pool, &node_spec);
      } else if (node.kind == "map" || node.kind == "call" || node.kind == "loop") {
        std::vector<std::string> dynamic_problems;
        std::string item_key = node.name;
        if (!node.inner.empty() && node.inner.front().kind == "agent") {
          item_key = AgentProvider(node.inner.front());
        }
        node_spec.dynamic = BuildDynamic(node, index, item_key, *defaults, *pool, build_body,
                                         &dynamic_problems);
        for (const std::string& line : dynamic_problems) problem(line);
        index += static_cast<int>(node.inner.size());
      } else {
        node_spec.body = build_body(node, index, node_spec.policy);
      }
      ++index;
    }
    for (const Diagnostic& diagnostic : Validate(spec)) problem(diagnostic.ToString());
  }
  for (const Diagnostic& diagnostic : ValidateFallbacks(script->workflows)) {
    problem(diagnostic.ToString());
  }
  for (const Diagnostic& diagnostic : ValidateDynamic(script->workflows)) {
    problem(diagnostic.ToString());
  }
  for (const Diagnostic& diagnostic : ValidateEscalations(script->workflows)) {
    problem(diagnostic.ToString());
  }
  if (declared.main >= 0 && declared.main < static_cast<int>(declared.workflows.size())) {
    const WorkflowDeclaration& main = declared.workflows[declared.main];
    for (const std::string& line : ApplyScheduleParams(main.params, main.name, &declared.schedules)) {
      problem(line);
    }
  }
  if (!problems.empty()) return Status::Error(ErrorKind::kPermanent, problems);
  Status modules = ReadModules(declared.required, &script->info.modules);
  if (!modules.ok()) return modules;
  script->main = declared.main;
  script->runtime = std::move(pool).value();
  script->declarations = std::move(declared.workflows);
  script->schedules = std::move(declared.schedules);
  return script;
}

}  // namespace keel
