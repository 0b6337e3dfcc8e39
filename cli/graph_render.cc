#include "cli/graph_render.h"

#include <fmt/format.h>

namespace keel::cli {
namespace {

struct Palette {
  const char* fill;
  const char* stroke;
};

Palette ColorsFor(NodeStatus status) {
  switch (status) {
    case NodeStatus::kSucceeded:
      return {"#c8e6c9", "#2e7d32"};
    case NodeStatus::kFallback:
      return {"#fff59d", "#f9a825"};
    case NodeStatus::kFailed:
      return {"#ffcdd2", "#c62828"};
    case NodeStatus::kSkipped:
      return {"#eeeeee", "#9e9e9e"};
    case NodeStatus::kCancelled:
      return {"#ffe0b2", "#ef6c00"};
    case NodeStatus::kRunning:
      return {"#bbdefb", "#1565c0"};
    case NodeStatus::kWaiting:
      return {"#e1bee7", "#6a1b9a"};
    case NodeStatus::kPending:
      break;
  }
  return {"#ffffff", "#616161"};
}

NodeStatus StatusOf(const NodeStatuses& statuses, const std::string& node) {
  auto it = statuses.find(node);
  return it == statuses.end() ? NodeStatus::kPending : it->second;
}

// "(optional, when)" style notes about a node, or "".
std::string Notes(const NodeSpec& node) {
  std::string notes;
  if (node.kind != "fn") notes = node.kind;
  if (node.optional) notes += notes.empty() ? "optional" : ", optional";
  if (node.has_when) notes += notes.empty() ? "when" : ", when";
  return notes;
}

std::string DotQuote(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string MermaidLabel(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '"') {
      out += "#quot;";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string RenderDot(const WorkflowSpec& workflow, const NodeStatuses* statuses) {
  std::string out = fmt::format("digraph {} {{\n", DotQuote(workflow.name));
  out += "  rankdir=LR;\n";
  out +=
      "  node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", "
      "fontname=\"Helvetica\"];\n";
  for (const NodeSpec& node : workflow.nodes) {
    std::string label = node.name;
    std::string notes = Notes(node);
    if (!notes.empty()) label += "\n(" + notes + ")";
    std::string colors;
    if (statuses != nullptr) {
      NodeStatus status = StatusOf(*statuses, node.name);
      Palette palette = ColorsFor(status);
      label += "\n" + std::string(NodeStatusName(status));
      colors = fmt::format(", fillcolor=\"{}\", color=\"{}\"", palette.fill, palette.stroke);
    }
    std::string attrs = "label=" + DotQuote(label) + colors;
    if (node.optional) attrs += ", style=\"rounded,filled,dashed\"";
    out += fmt::format("  {} [{}];\n", DotQuote(node.name), attrs);
  }
  for (const NodeSpec& node : workflow.nodes) {
    for (const std::string& dep : node.after) {
      out += fmt::format("  {} -> {};\n", DotQuote(dep), DotQuote(node.name));
    }
  }
  out += "}\n";
  return out;
}

std::string RenderMermaid(const WorkflowSpec& workflow, const NodeStatuses* statuses) {
  std::string out = "flowchart LR\n";
  for (size_t i = 0; i < workflow.nodes.size(); ++i) {
    const NodeSpec& node = workflow.nodes[i];
    std::string label = node.name;
    std::string notes = Notes(node);
    if (!notes.empty()) label += " (" + notes + ")";
    if (statuses != nullptr) {
      label += "<br/>" + std::string(NodeStatusName(StatusOf(*statuses, node.name)));
    }
    out += fmt::format("  n{}[\"{}\"]\n", i, MermaidLabel(label));
  }
  for (size_t i = 0; i < workflow.nodes.size(); ++i) {
    for (const std::string& dep : workflow.nodes[i].after) {
      int from = workflow.Find(dep);
      if (from < 0) continue;
      out += fmt::format("  n{} --> n{}\n", from, i);
    }
  }
  if (statuses == nullptr) return out;
  for (NodeStatus status : {NodeStatus::kPending, NodeStatus::kRunning, NodeStatus::kSucceeded,
                            NodeStatus::kFailed, NodeStatus::kSkipped, NodeStatus::kCancelled,
                            NodeStatus::kFallback, NodeStatus::kWaiting}) {
    std::string members;
    for (size_t i = 0; i < workflow.nodes.size(); ++i) {
      if (StatusOf(*statuses, workflow.nodes[i].name) != status) continue;
      members += fmt::format("{}n{}", members.empty() ? "" : ",", i);
    }
    if (members.empty()) continue;
    Palette colors = ColorsFor(status);
    out += fmt::format("  classDef {} fill:{},stroke:{}\n", NodeStatusName(status), colors.fill,
                       colors.stroke);
    out += fmt::format("  class {} {}\n", members, NodeStatusName(status));
  }
  return out;
}

}  // namespace keel::cli
