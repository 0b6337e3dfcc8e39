#include "service/node_shapes.h"

#include <rapidjson/document.h>

#include "service/command_output.h"

namespace keel::service {
namespace {

constexpr size_t kMaxRuns = 64;
constexpr double kGraphTimeout = 20;  // seconds a child `keel graph` may take

std::string Text(const rapidjson::Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

// The shapes in `keel graph --format json` output; empty when it does not parse.
std::map<std::string, NodeShape> Parse(const std::string& json) {
  std::map<std::string, NodeShape> shapes;
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) return shapes;
  auto nodes = doc.FindMember("nodes");
  auto edges = doc.FindMember("edges");
  if (nodes == doc.MemberEnd() || !nodes->value.IsArray()) return shapes;
  for (const auto& node : nodes->value.GetArray()) {
    if (!node.IsObject()) continue;
    shapes[Text(node, "name")].kind = Text(node, "kind");
  }
  if (edges == doc.MemberEnd() || !edges->value.IsArray()) return shapes;
  for (const auto& edge : edges->value.GetArray()) {
    if (!edge.IsObject()) continue;
    auto it = shapes.find(Text(edge, "to"));
    if (it != shapes.end()) it->second.deps.push_back(Text(edge, "from"));
  }
  return shapes;
}

}  // namespace

std::optional<NodeShape> NodeShapes::Lookup(const RunRecord& run, const std::string& node) {
  if (node.find_first_of("[/#") != std::string::npos) return std::nullopt;
  const auto key = std::make_pair(run.id, run.script_version);
  {
    MutexLock lock(&mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      auto shape = it->second.find(node);
      if (shape == it->second.end()) return std::nullopt;
      return shape->second;
    }
  }
  auto child = RunForOutput(
      {options_.keel_path, "graph", run.id, "--format", "json", "--db", options_.db},
      kGraphTimeout);
  if (!child.ok() || child->exit_code != 0) return std::nullopt;
  Shapes shapes = Parse(child->out);
  std::optional<NodeShape> found;
  if (auto it = shapes.find(node); it != shapes.end()) found = it->second;
  MutexLock lock(&mu_);
  if (cache_.size() >= kMaxRuns) cache_.erase(cache_.begin());
  cache_[key] = std::move(shapes);
  return found;
}

}  // namespace keel::service
