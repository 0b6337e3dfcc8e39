#include "views/script_versions_view.h"

#include <cstdio>
#include <map>

#include "views/format.h"

namespace keel {
namespace {

// How many node names a version's line lists before "and N more".
constexpr size_t kNamesShown = 12;

// A pending entry `keel show` made up for a node the run has not reached.
bool NeverRecorded(const NodeRecord& node) {
  return node.status == NodeStatus::kPending && node.attempts == 0 && node.script_version == 0;
}

std::string ShortHash(const std::string& sha256) { return sha256.substr(0, 8); }

std::string NameList(const std::vector<std::string>& names) {
  std::string list;
  for (size_t i = 0; i < names.size() && i < kNamesShown; ++i) {
    list += (i ? ", " : "") + names[i];
  }
  if (names.size() > kNamesShown) {
    list += " and " + std::to_string(names.size() - kNamesShown) + " more";
  }
  return list.empty() ? "-" : list;
}

// The names of the recorded nodes by the version that wrote them (0: reused
// by a fork), in `nodes` order.
std::map<int, std::vector<std::string>> NodesByVersion(const std::vector<NodeRecord>& nodes) {
  std::map<int, std::vector<std::string>> by_version;
  for (const NodeRecord& node : nodes) {
    if (!NeverRecorded(node)) by_version[node.script_version].push_back(node.node);
  }
  return by_version;
}

}  // namespace

void PrintForkedFrom(const RunRecord& run) {
  if (run.forked_from.empty()) return;
  if (run.forked_from_node.empty()) {
    std::printf("forked    from %s, every node run again\n", run.forked_from.c_str());
  } else {
    std::printf("forked    from %s at node %s\n", run.forked_from.c_str(),
                run.forked_from_node.c_str());
  }
}

void PrintScriptVersions(const RunRecord& run, const std::vector<ScriptVersion>& versions,
                         const std::vector<NodeRecord>& nodes) {
  if (versions.size() <= 1 && run.forked_from.empty()) return;
  auto by_version = NodesByVersion(nodes);
  std::printf("\nscript versions\n");
  for (const ScriptVersion& v : versions) {
    std::string files = v.script_path + " " + ShortHash(v.script_sha256);
    for (const ScriptModule& m : v.modules) files += ", " + m.name + " " + ShortHash(m.sha256);
    std::printf("  %d  %s  %s\n", v.version, FormatLocalTime(v.created_at).c_str(), files.c_str());
    std::printf("     nodes: %s\n", NameList(by_version[v.version]).c_str());
  }
  auto reused = by_version.find(0);
  if (reused != by_version.end()) {
    std::printf("  reused from %s: %s\n", run.forked_from.c_str(),
                NameList(reused->second).c_str());
  }
}

void WriteRunConfigJson(JsonOut* out, const RunRecord& run,
                        const std::vector<ScriptVersion>& versions,
                        const std::vector<NodeRecord>& nodes) {
  out->Key("config").Raw(run.config_json);
  out->Key("forked_from").StringOrNull(run.forked_from);
  out->Key("forked_from_node").StringOrNull(run.forked_from_node);
  out->Key("script_version").Int(run.script_version);
  auto by_version = NodesByVersion(nodes);
  out->Key("versions");
  out->BeginArray();
  for (const ScriptVersion& v : versions) {
    out->BeginObject();
    out->Key("version").Int(v.version);
    out->Key("created_at").TimeOrNull(v.created_at);
    out->Key("script_path").String(v.script_path);
    out->Key("script_sha256").String(v.script_sha256);
    out->Key("modules");
    out->BeginArray();
    for (const ScriptModule& m : v.modules) {
      out->BeginObject();
      out->Key("name").String(m.name);
      out->Key("path").String(m.path);
      out->Key("sha256").String(m.sha256);
      out->EndObject();
    }
    out->EndArray();
    out->Key("nodes");
    out->BeginArray();
    for (const std::string& name : by_version[v.version]) out->String(name);
    out->EndArray();
    out->EndObject();
  }
  out->EndArray();
}

void WriteNodeVersionJson(JsonOut* out, const NodeRecord& node) {
  out->Key("version");
  if (NeverRecorded(node)) {
    out->Null();
  } else {
    out->Int(node.script_version);
  }
}

}  // namespace keel
