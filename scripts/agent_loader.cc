#include "scripts/agent_loader.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/did_you_mean.h"
#include "nodes/wire_json.h"
#include "scripts/function_node.h"

namespace keel {
namespace {

using rapidjson::Value;
using wire::Serialize;

std::string EnvName(const std::string& provider) {
  std::string name = "KEEL_PROVIDER_";
  for (char c : provider) {
    name += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::toupper(c)) : '_';
  }
  return name;
}

std::string StringMember(const Value& object, const char* name) {
  return wire::StringOr(wire::Member(object, name));
}

std::vector<std::string> ParamNames(const WorkflowDeclaration& workflow) {
  rapidjson::Document params;
  params.Parse(workflow.params ? workflow.params->c_str() : "{}");
  std::vector<std::string> names;
  if (params.IsObject()) {
    for (const auto& m : params.GetObject()) names.emplace_back(m.name.GetString());
  }
  return names;
}

// Checks one template's fields against the workflow; appends problems.
void CheckFields(const PromptTemplate& t, const char* option, const WorkflowDeclaration& workflow,
                 const InheritedNames& inherited, const NodeDeclaration& node,
                 std::vector<std::string>* problems) {
  std::vector<std::string> param_names = ParamNames(workflow);
  param_names.insert(param_names.end(), inherited.params.begin(), inherited.params.end());
  std::vector<std::string> dep_names = node.after;
  dep_names.insert(dep_names.end(), inherited.deps.begin(), inherited.deps.end());
  for (const PromptTemplate::Field& field : t.fields()) {
    std::string problem;
    if (field.path[0] == "item" || field.path[0] == "index") {
      // Only a keel.map's item (an unnamed node) has one.
      if (!node.name.empty()) problem = "is only known in the `node` of a keel.map";
    } else if (const std::string& name = field.path[1]; field.path[0] == "params") {
      bool known = false;
      for (const auto& p : param_names) known = known || p == name;
      if (!known) {
        problem = "names no parameter with a default in workflow '" + workflow.name + "'" +
                  DidYouMean(name, param_names);
      }
    } else {
      bool known = false;
      for (const auto& a : dep_names) known = known || a == name;
      if (!known) problem = "names no dependency in `after`" + DidYouMean(name, dep_names);
    }
    if (!problem.empty()) {
      problems->push_back(Diagnostic{node.where, node.name,
                                     std::string(option) + ": {{" + field.text + "}} " + problem}
                              .ToString());
    }
  }
}

// Parses template `text` of option `option`; problems appended.
PromptTemplate Template(const std::string& text, const char* option,
                        const WorkflowDeclaration& workflow, const InheritedNames& inherited,
                        const NodeDeclaration& node, std::vector<std::string>* problems) {
  auto parsed = PromptTemplate::Parse(text);
  if (!parsed.ok()) {
    problems->push_back(
        Diagnostic{node.where, node.name, std::string(option) + ": " + parsed.status().message()}
            .ToString());
    return PromptTemplate();
  }
  CheckFields(*parsed, option, workflow, inherited, node, problems);
  return std::move(parsed).value();
}

void ReadOutput(const Value& agent, AgentSpec* spec) {
  auto it = agent.FindMember("output");
  if (it == agent.MemberEnd()) return;
  if (it->value.IsString() && std::string_view(it->value.GetString()) == "json") {
    spec->request.output = OutputMode::kJson;
  } else if (it->value.IsObject()) {
    spec->request.output = OutputMode::kSchema;
    spec->request.schema_json = Serialize(it->value);
  }
}

void ReadTools(const Value& agent, AgentSpec* spec) {
  auto it = agent.FindMember("tools");
  if (it == agent.MemberEnd() || !it->value.IsObject()) return;
  for (const auto& m : it->value.GetObject()) {
    ToolSpec tool;
    tool.name = m.name.GetString();
    if (m.value.IsObject()) {
      tool.description = StringMember(m.value, "description");
      auto p = m.value.FindMember("parameters");
      if (p != m.value.MemberEnd() && p->value.IsObject()) {
        tool.parameters_json = Serialize(p->value);
      }
    }
    spec->request.tools.push_back(std::move(tool));
  }
}

}  // namespace

Status AddProviders(const std::vector<ProviderConfig>& providers, const LoadOptions& options,
                    const std::string& script_dir, LlmClient* client) {
  std::string problems;
  for (ProviderConfig config : providers) {
    if (!config.ca_file.empty()) {
      if (config.ca_file.front() != '/') config.ca_file = script_dir + "/" + config.ca_file;
      if (std::FILE* file = std::fopen(config.ca_file.c_str(), "r")) {
        std::fclose(file);
      } else {
        if (!problems.empty()) problems += '\n';
        problems += config.where + ": provider '" + config.name +
                    "': option 'ca_file': cannot read " + config.ca_file + ": " +
                    std::strerror(errno);
        continue;
      }
    }
    std::string url;
    if (auto it = options.provider_urls.find(config.name); it != options.provider_urls.end()) {
      url = it->second;
    } else if (const char* env = std::getenv(EnvName(config.name).c_str()); env && *env) {
      url = env;
    }
    if (!url.empty()) {
      config.base_url = url;
      if (config.kind == "mock") config.kind = "openai";
    }
    Status added = client->AddProvider(config);
    if (!added.ok()) {
      if (!problems.empty()) problems += '\n';
      problems += config.where + ": provider '" + config.name + "': " + added.message();
    }
  }
  for (const auto& [name, url] : options.provider_urls) {
    if (client->Find(name) == nullptr) {
      if (!problems.empty()) problems += '\n';
      problems +=
          "--provider " + name + "=" + url + ": the script declares no provider '" + name + "'";
    }
  }
  if (!problems.empty()) return Status::Error(ErrorKind::kPermanent, problems);
  return Status::Ok();
}

std::string AgentProvider(const NodeDeclaration& node) {
  if (!node.agent) return "";
  rapidjson::Document agent;
  agent.Parse(node.agent->c_str());
  return agent.IsObject() ? StringMember(agent, "provider") : "";
}

std::map<std::string, InheritedNames> FallbackInheritance(
    const std::vector<WorkflowDeclaration>& workflows) {
  std::map<std::string, InheritedNames> inheritance;
  for (const WorkflowDeclaration& workflow : workflows) {
    std::vector<std::string> params = ParamNames(workflow);
    for (const NodeDeclaration& node : workflow.nodes) {
      rapidjson::Document policy;
      policy.Parse(node.policy ? node.policy->c_str() : "{}");
      if (!policy.IsObject()) continue;
      auto fallback = policy.FindMember("fallback");
      if (fallback == policy.MemberEnd()) continue;
      std::vector<std::string> names;
      auto add = [&names](const Value& entry) {
        if (entry.IsString()) names.emplace_back(entry.GetString());
        if (entry.IsObject() && entry.HasMember("workflow") && entry["workflow"].IsString()) {
          names.emplace_back(entry["workflow"].GetString());
        }
      };
      if (fallback->value.IsArray()) {
        for (const Value& entry : fallback->value.GetArray()) add(entry);
      } else {
        add(fallback->value);
      }
      for (const std::string& name : names) {
        InheritedNames& inherited = inheritance[name];
        inherited.params.insert(inherited.params.end(), params.begin(), params.end());
        inherited.deps.insert(inherited.deps.end(), node.after.begin(), node.after.end());
      }
    }
  }
  return inheritance;
}

std::shared_ptr<NodeBody> BuildAgent(const WorkflowDeclaration& workflow,
                                     const InheritedNames& inherited, const NodeDeclaration& node,
                                     int index, size_t memory,
                                     const std::shared_ptr<LuaStatePool>& pool,
                                     const std::shared_ptr<LlmClient>& client,
                                     std::vector<std::string>* problems) {
  rapidjson::Document agent;
  agent.Parse(node.agent ? node.agent->c_str() : "{}");
  if (!agent.IsObject()) agent.SetObject();
  AgentSpec spec;
  spec.provider = StringMember(agent, "provider");
  if (client->Find(spec.provider) == nullptr) {
    std::vector<std::string> names;
    for (const auto& name : client->ProviderNames()) names.push_back(name);
    problems->push_back(Diagnostic{node.where, node.name,
                                   "provider '" + spec.provider +
                                       "' is not declared (keel.provider)" +
                                       DidYouMean(spec.provider, names)}
                            .ToString());
  }
  spec.request.model = StringMember(agent, "model");
  if (auto t = agent.FindMember("temperature"); t != agent.MemberEnd() && t->value.IsNumber()) {
    spec.request.temperature = t->value.GetDouble();
  }
  if (auto t = agent.FindMember("max_tokens"); t != agent.MemberEnd() && t->value.IsInt()) {
    spec.request.max_tokens = t->value.GetInt();
  }
  if (auto t = agent.FindMember("max_turns"); t != agent.MemberEnd() && t->value.IsInt()) {
    spec.max_turns = t->value.GetInt();
  }
  if (auto h = agent.FindMember("hedge"); h != agent.MemberEnd() && h->value.IsObject()) {
    if (h->value.HasMember("delay") && h->value["delay"].IsNumber()) {
      spec.hedge.delay = h->value["delay"].GetDouble();
    }
    spec.hedge.max =
        h->value.HasMember("max") && h->value["max"].IsInt() ? h->value["max"].GetInt() : 2;
  }
  ReadOutput(agent, &spec);
  ReadTools(agent, &spec);
  spec.system =
      Template(StringMember(agent, "system"), "system", workflow, inherited, node, problems);
  spec.prompt =
      Template(StringMember(agent, "prompt"), "prompt", workflow, inherited, node, problems);
  if (auto m = agent.FindMember("messages"); m != agent.MemberEnd() && m->value.IsArray()) {
    for (const Value& message : m->value.GetArray()) {
      if (!message.IsObject()) continue;
      spec.messages.emplace_back(StringMember(message, "role"),
                                 Template(StringMember(message, "content"), "messages", workflow,
                                          inherited, node, problems));
    }
  }
  std::shared_ptr<ToolRunner> tools;
  if (!spec.request.tools.empty()) tools = std::make_shared<LuaToolRunner>(pool, index, memory);
  auto body = std::make_shared<AgentNode>(client, std::move(spec), std::move(tools));
  if (!node.has_when) return body;
  return std::make_shared<FunctionNode>(pool, index, memory, body);
}

}  // namespace keel
