#include "views/item_view.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>

#include "views/item_names.h"

namespace keel {
namespace {

// The declared node a recorded name belongs to: "c" for "c/fetch",
// "r" for "r#2/x", "m" for "m[3]" and "m[3]/a"; the name itself otherwise.
std::string OwnerOf(const std::string& name) {
  size_t cut = name.find_first_of("[/#");
  return cut == std::string::npos ? name : name.substr(0, cut);
}

bool IsItemPart(const std::string& name) {
  size_t cut = name.find_first_of("[/#");
  return cut != std::string::npos && name[cut] == '[';
}

}  // namespace

std::map<std::string, ItemTally> TallyItems(const std::vector<NodeRecord>& nodes,
                                            const std::vector<EventRecord>& events) {
  std::map<std::string, ItemTally> tallies;
  for (const NodeRecord& node : nodes) {
    std::string_view map;
    bool is_item = false;
    if (!SplitItemName(node.node, &map, &is_item) || !is_item) continue;
    ItemTally& t = tallies[std::string(map)];
    ++t.total;
    if (Succeeded(node.status) || node.status == NodeStatus::kSkipped) {
      ++t.succeeded;
    } else if (node.status == NodeStatus::kRunning || node.status == NodeStatus::kPending) {
      ++t.running;
    } else if (node.status == NodeStatus::kCancelled) {
      ++t.cancelled;
    } else {
      ++t.failed;
    }
  }
  for (const EventRecord& event : events) {
    if (event.kind != "map_started") continue;
    rapidjson::Document data;
    data.Parse(event.data_json.c_str());
    if (data.HasParseError() || !data.IsObject() || !data.HasMember("items")) continue;
    if (!data["items"].IsNumber()) continue;
    ItemTally& t = tallies[event.node];
    t.total = std::max(t.total, static_cast<size_t>(data["items"].GetDouble()));
  }
  return tallies;
}

std::string DescribeTally(const ItemTally& tally) {
  std::string text =
      ItemCounts(tally.total, tally.succeeded, tally.failed, tally.cancelled, tally.running);
  return tally.total == 0 ? "0 " + text : text;
}

void ArrangeInnerNodes(std::vector<NodeRecord>* nodes, bool items) {
  std::unordered_map<std::string, std::vector<NodeRecord>> inner;  // by owner
  std::vector<NodeRecord> outer;
  std::unordered_set<std::string> owners;
  for (NodeRecord& node : *nodes) {
    if (node.node.find_first_of("[/#") == std::string::npos) owners.insert(node.node);
  }
  for (NodeRecord& node : *nodes) {
    std::string owner = OwnerOf(node.node);
    if (owner == node.node || !owners.count(owner)) {
      outer.push_back(std::move(node));
    } else if (items || !IsItemPart(node.node)) {
      inner[owner].push_back(std::move(node));
    }
  }
  std::vector<NodeRecord> arranged;
  for (NodeRecord& node : outer) {
    auto it = inner.find(node.node);
    std::string name = node.node;
    arranged.push_back(std::move(node));
    if (it == inner.end()) continue;
    // Items and iterations by their number (m[2] before m[10]), then what
    // ran inside each in the order it started.
    auto key = [&name](const NodeRecord& n) {
      long number = 0;
      if (n.node.size() > name.size() && (n.node[name.size()] == '[' || n.node[name.size()] == '#')) {
        number = std::strtol(n.node.c_str() + name.size() + 1, nullptr, 10);
      }
      double time = n.started_at > 0 ? n.started_at : (n.finished_at > 0 ? n.finished_at : 1e300);
      return std::pair{number, time};
    };
    std::stable_sort(it->second.begin(), it->second.end(),
                     [&](const NodeRecord& a, const NodeRecord& b) { return key(a) < key(b); });
    for (NodeRecord& n : it->second) arranged.push_back(std::move(n));
  }
  *nodes = std::move(arranged);
}

WorkflowSpec WithInnerNodes(const WorkflowSpec& workflow, const std::vector<NodeRecord>& nodes,
                            const std::map<std::string, ItemTally>& tallies, bool items,
                            bool inner) {
  WorkflowSpec out;
  out.name = workflow.name;
  out.where = workflow.where;
  for (const NodeSpec& spec : workflow.nodes) {
    NodeSpec& copy = out.nodes.emplace_back();
    copy.name = spec.name;
    copy.kind = spec.kind;
    copy.after = spec.after;
    copy.optional = spec.optional;
    copy.has_when = spec.has_when;
    auto tally = tallies.find(spec.name);
    if (tally != tallies.end()) copy.kind += ", " + DescribeTally(tally->second);
  }
  if (!inner) return out;
  std::unordered_set<std::string> known;
  for (const NodeSpec& spec : out.nodes) known.insert(spec.name);
  for (const NodeRecord& node : nodes) {
    if (known.count(node.node)) continue;
    std::string owner = OwnerOf(node.node);
    if (owner == node.node || !known.count(owner)) continue;
    if (!items && IsItemPart(node.node)) continue;
    NodeSpec& added = out.nodes.emplace_back();
    added.name = node.node;
    added.kind = "fn";
    // Under the item or iteration it belongs to, else under its owner.
    size_t slash = node.node.rfind('/');
    std::string parent = slash == std::string::npos ? owner : node.node.substr(0, slash);
    if (!known.count(parent)) parent = owner;
    added.after = {parent};
    known.insert(node.node);
  }
  return out;
}

std::map<std::string, ItemTally> TallyInner(const WorkflowSpec& workflow,
                                            const std::vector<NodeRecord>& nodes) {
  std::map<std::string, ItemTally> tallies;
  for (const NodeSpec& spec : workflow.nodes) {
    if (spec.kind == "call" || spec.kind == "loop") tallies[spec.name];
  }
  for (const NodeRecord& node : nodes) {
    std::string owner = OwnerOf(node.node);
    auto it = tallies.find(owner);
    if (owner == node.node || it == tallies.end() || IsItemPart(node.node)) continue;
    ItemTally& tally = it->second;
    ++tally.total;
    switch (node.status) {
      case NodeStatus::kSucceeded:
      case NodeStatus::kFallback:
        ++tally.succeeded;
        break;
      case NodeStatus::kFailed:
        ++tally.failed;
        break;
      case NodeStatus::kCancelled:
      case NodeStatus::kSkipped:
        ++tally.cancelled;
        break;
      case NodeStatus::kRunning:
      case NodeStatus::kWaiting:
        ++tally.running;
        break;
      case NodeStatus::kPending:
        break;
    }
  }
  return tallies;
}

}  // namespace keel
