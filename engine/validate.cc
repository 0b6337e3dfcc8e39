// Validate(): the structural checks every workflow passes before it runs.

#include <algorithm>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/did_you_mean.h"
#include "engine/workflow.h"

namespace keel {
namespace {

// " (did you mean 'extract'?)" when the name of one of `specs` (nodes or
// workflows) is close enough to `name` to be a likely typo: up to a third of
// its length in edits, and at least 2; otherwise "".
template <typename Spec>
std::string SuggestName(const std::string& name, const std::vector<Spec>& specs) {
  std::vector<std::string_view> names;
  names.reserve(specs.size());
  for (const Spec& spec : specs) names.push_back(spec.name);
  return DidYouMean(name, names, std::max<size_t>(2, name.size() / 3));
}

// Finds one cycle with an iterative DFS over `deps` (node -> its dependencies)
// and returns it in run order: each node waits for the one before it.
std::vector<int> FindCycle(const std::vector<std::vector<int>>& deps) {
  const int n = static_cast<int>(deps.size());
  std::vector<int> color(n, 0), parent(n, -1);  // 0 new, 1 on stack, 2 done
  for (int root = 0; root < n; ++root) {
    if (color[root]) continue;
    std::vector<std::pair<int, size_t>> stack{{root, 0}};
    color[root] = 1;
    while (!stack.empty()) {
      auto& [v, next] = stack.back();
      if (next == deps[v].size()) {
        color[v] = 2;
        stack.pop_back();
        continue;
      }
      int w = deps[v][next++];
      if (color[w] == 1) {
        std::vector<int> cycle{w};
        for (int u = v; u != w; u = parent[u]) cycle.push_back(u);
        cycle.push_back(w);
        return cycle;
      }
      if (color[w] == 0) {
        color[w] = 1;
        parent[w] = v;
        stack.push_back({w, 0});
      }
    }
  }
  return {};
}

}  // namespace

int WorkflowSpec::Find(const std::string& node_name) const {
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].name == node_name) return static_cast<int>(i);
  }
  return -1;
}

std::string Diagnostic::ToString() const {
  std::string out = where.empty() ? std::string() : where + ": ";
  if (!node.empty()) out += "node '" + node + "': ";
  return out + message;
}

std::vector<Diagnostic> Validate(const WorkflowSpec& wf) {
  std::vector<Diagnostic> out;
  std::unordered_map<std::string, int> index;
  if (wf.nodes.empty()) {
    out.push_back({wf.where, "", "workflow '" + wf.name + "' has no nodes"});
  }
  for (size_t i = 0; i < wf.nodes.size(); ++i) {
    const NodeSpec& node = wf.nodes[i];
    if (node.name.empty()) {
      out.push_back({node.where, "", "a node has an empty name"});
      continue;
    }
    auto [it, inserted] = index.emplace(node.name, static_cast<int>(i));
    if (!inserted) {
      out.push_back({node.where, node.name,
                     "duplicate node name (first defined at " + wf.nodes[it->second].where + ")"});
    }
    if (!node.body && !node.dynamic) {
      out.push_back({node.where, node.name, "has nothing to run (no `run`)"});
    }
    const JoinPolicy& join = node.policy.join;
    if (join.kind == JoinPolicy::Kind::kQuorum &&
        join.quorum > static_cast<int>(node.after.size())) {
      out.push_back({node.where, node.name,
                     "join quorum " + std::to_string(join.quorum) + " is more than its " +
                         std::to_string(node.after.size()) + " dependencies"});
    }
  }
  std::vector<std::vector<int>> deps(wf.nodes.size());
  for (size_t i = 0; i < wf.nodes.size(); ++i) {
    const NodeSpec& node = wf.nodes[i];
    std::unordered_set<std::string_view> seen;
    for (const auto& dep : node.after) {
      if (!seen.insert(dep).second) {
        out.push_back({node.where, node.name, "lists dependency '" + dep + "' twice"});
        continue;
      }
      if (dep == node.name) {
        out.push_back({node.where, node.name, "depends on itself"});
        continue;
      }
      auto it = index.find(dep);
      if (it == index.end()) {
        out.push_back({node.where, node.name,
                       "unknown dependency '" + dep + "'" + SuggestName(dep, wf.nodes)});
        continue;
      }
      deps[i].push_back(it->second);
    }
  }
  std::vector<int> cycle = FindCycle(deps);
  if (!cycle.empty()) {
    std::string path;
    for (size_t k = 0; k < cycle.size(); ++k) {
      if (k) path += " -> ";
      path += wf.nodes[cycle[k]].name;
    }
    const NodeSpec& first = wf.nodes[cycle.front()];
    out.push_back({first.where, "",
                   "dependency cycle: " + path + " (each node waits for the one before it)"});
  }
  return out;
}

int OutputNode(const WorkflowSpec& wf) {
  int named = wf.Find("output");
  if (named >= 0) return named;
  std::unordered_set<std::string_view> depended_on;
  for (const auto& n : wf.nodes) depended_on.insert(n.after.begin(), n.after.end());
  int sink = -1;
  for (size_t i = 0; i < wf.nodes.size(); ++i) {
    if (depended_on.count(wf.nodes[i].name)) continue;
    if (sink >= 0) return -1;
    sink = static_cast<int>(i);
  }
  return sink;
}

std::vector<Diagnostic> ValidateFallbacks(const std::vector<WorkflowSpec>& workflows) {
  std::vector<Diagnostic> out;
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < workflows.size(); ++i) index.emplace(workflows[i].name, int(i));
  // calls[w] = workflows that nodes of w fall back to.
  std::vector<std::vector<int>> calls(workflows.size());
  std::vector<bool> used_as_fallback(workflows.size());
  for (size_t w = 0; w < workflows.size(); ++w) {
    for (const auto& node : workflows[w].nodes) {
      for (const auto& rule : node.policy.fallback) {
        const std::string& fb = rule.workflow;
        auto it = index.find(fb);
        if (it == index.end()) {
          out.push_back({node.where, node.name,
                         "fallback '" + fb + "' is not a workflow declared in this file" +
                             SuggestName(fb, workflows)});
          continue;
        }
        calls[w].push_back(it->second);
        used_as_fallback[it->second] = true;
      }
    }
  }
  for (size_t w = 0; w < workflows.size(); ++w) {
    if (used_as_fallback[w] && OutputNode(workflows[w]) < 0) {
      out.push_back({workflows[w].where, "",
                     "workflow '" + workflows[w].name +
                         "' is used as a fallback but has no output: name a node 'output' or "
                         "give it a single final node"});
    }
  }
  std::vector<int> cycle = FindCycle(calls);
  if (!cycle.empty()) {
    std::string path;
    for (size_t k = 0; k < cycle.size(); ++k) path += (k ? " -> " : "") + workflows[cycle[k]].name;
    out.push_back({workflows[cycle.front()].where, "", "fallback cycle: " + path});
    return out;
  }
  // Longest fallback chain from each workflow (the graph is acyclic here).
  std::vector<int> depth(workflows.size(), -1);
  std::function<int(int)> depth_of = [&](int w) {
    if (depth[w] >= 0) return depth[w];
    int d = 0;
    for (int c : calls[w]) d = std::max(d, 1 + depth_of(c));
    return depth[w] = d;
  };
  for (size_t w = 0; w < workflows.size(); ++w) {
    if (depth_of(int(w)) > kMaxFallbackDepth) {
      out.push_back({workflows[w].where, "",
                     "fallbacks nest " + std::to_string(depth[w]) + " deep from workflow '" +
                         workflows[w].name + "' (at most " + std::to_string(kMaxFallbackDepth) +
                         ")"});
    }
  }
  return out;
}

}  // namespace keel
