#include "engine/rerun.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "engine/did_you_mean.h"

namespace keel {

Result<std::vector<std::string>> NodesFrom(const WorkflowSpec& workflow, const std::string& from) {
  const int start = workflow.Find(from);
  if (start < 0) {
    std::vector<std::string> names;
    names.reserve(workflow.nodes.size());
    for (const NodeSpec& node : workflow.nodes) names.push_back(node.name);
    return Status::Error(ErrorKind::kPermanent, "no node '" + from + "' in workflow '" +
                                                    workflow.name + "'" + DidYouMean(from, names));
  }
  // Dependents by index, then a walk from `start`.
  const size_t n = workflow.nodes.size();
  std::vector<std::vector<int>> dependents(n);
  for (size_t i = 0; i < n; ++i) {
    for (const std::string& dep : workflow.nodes[i].after) {
      int d = workflow.Find(dep);
      if (d >= 0) dependents[d].push_back(static_cast<int>(i));
    }
  }
  std::vector<bool> marked(n, false);
  std::vector<int> stack = {start};
  marked[start] = true;
  while (!stack.empty()) {
    int i = stack.back();
    stack.pop_back();
    for (int j : dependents[i]) {
      if (!marked[j]) {
        marked[j] = true;
        stack.push_back(j);
      }
    }
  }
  std::vector<std::string> nodes;
  for (size_t i = 0; i < n; ++i) {
    if (marked[i]) nodes.push_back(workflow.nodes[i].name);
  }
  return nodes;
}

bool RecordOfAny(std::string_view record, const std::unordered_set<std::string>& nodes) {
  if (nodes.empty()) return false;
  if (nodes.count(std::string(record))) return true;
  // Every prefix that ends before a '[', '/' or '#': node names may hold
  // those characters themselves, so the first one is not enough.
  for (size_t i = 1; i < record.size(); ++i) {
    char c = record[i];
    if ((c == '[' || c == '/' || c == '#') && nodes.count(std::string(record.substr(0, i)))) {
      return true;
    }
  }
  return false;
}

void DropHistory(const std::unordered_set<std::string>& nodes, RunHistory* history) {
  if (nodes.empty()) return;
  std::erase_if(history->wait_due, [&](const auto& due) { return RecordOfAny(due.first, nodes); });
  std::erase_if(history->attempts,
                [&](const auto& started) { return RecordOfAny(started.first, nodes); });
  for (auto it = history->journals.begin(); it != history->journals.end();) {
    // A fallback workflow's checkpoints are keyed "parent\x1fworkflow\x1fnode".
    std::string_view key = it->first;
    key = key.substr(0, key.find('\x1f'));
    if (RecordOfAny(key, nodes)) {
      it = history->journals.erase(it);
    } else {
      ++it;
    }
  }
}

std::string RerunEventData(const std::string& from, const std::vector<std::string>& nodes) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("from");
  w.String(from.c_str(), static_cast<rapidjson::SizeType>(from.size()));
  w.Key("nodes");
  w.StartArray();
  for (const std::string& node : nodes) {
    w.String(node.c_str(), static_cast<rapidjson::SizeType>(node.size()));
  }
  w.EndArray();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::unordered_set<std::string> RerunEventNodes(const std::string& data_json) {
  std::unordered_set<std::string> nodes;
  rapidjson::Document doc;
  if (doc.Parse(data_json.c_str(), data_json.size()).HasParseError() || !doc.IsObject()) {
    return nodes;
  }
  auto list = doc.FindMember("nodes");
  if (list == doc.MemberEnd() || !list->value.IsArray()) return nodes;
  for (const auto& name : list->value.GetArray()) {
    if (name.IsString()) nodes.emplace(name.GetString(), name.GetStringLength());
  }
  return nodes;
}

}  // namespace keel
