#include "service/graph_layout.h"

#include <graphviz/gvc.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace keel::service {
namespace {

// libgvc keeps global state (its error handler, the layout engines'
// statics), so it is used by one thread at a time, process-wide.
Mutex g_gvc_mu;
GVC_t* g_gvc GUARDED_BY(g_gvc_mu) = nullptr;

// Box sizes in points (a 72nd of an inch): about 7 points a character of
// the page's 12 px font, a line for the name and one for the status.
constexpr double kCharWidth = 7.0;
constexpr double kMinWidth = 90;
constexpr double kMaxWidth = 280;
constexpr double kHeight = 40;
constexpr double kMapHeight = 52;  // a third line: a map's, call's or loop's progress
// Graphs with more nodes than this get the faster, coarser options.
constexpr size_t kBigGraph = 400;

double Round1(double value) { return std::round(value * 10) / 10; }

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", Round1(value));
  std::string out = text;
  if (out.ends_with(".0")) out.resize(out.size() - 2);
  return out;
}

void SetAttr(void* object, const char* name, const std::string& value) {
  agsafeset(object, const_cast<char*>(name), const_cast<char*>(value.c_str()),
            const_cast<char*>(""));
}

// The shape as text: the cache's key.
std::string ShapeKey(const GraphLayout::Shape& shape) {
  std::string key;
  for (size_t i = 0; i < shape.names.size(); ++i) {
    key += shape.names[i];
    key += '\x1f';
    key += shape.kinds[i];
    key += '\x1e';
  }
  key += '\x1d';
  for (const auto& [from, to] : shape.edges) {
    key += std::to_string(from) + ">" + std::to_string(to) + ",";
  }
  return key;
}

Status Bad(const std::string& what) {
  return Status::Error(ErrorKind::kPermanent, "not a graph JSON: " + what);
}

}  // namespace

Result<GraphLayout::Placement> GraphLayout::LayOut(const Shape& shape) {
  MutexLock lock(&g_gvc_mu);
  if (g_gvc == nullptr) g_gvc = gvContext();
  if (g_gvc == nullptr) return Status::Error(ErrorKind::kPermanent, "Graphviz: no context");
  Agraph_t* graph = agopen(const_cast<char*>("g"), Agdirected, nullptr);
  SetAttr(graph, "rankdir", "LR");
  SetAttr(graph, "nodesep", "0.25");
  SetAttr(graph, "ranksep", "0.5");
  const size_t n = shape.names.size();
  if (n > kBigGraph) {
    // Bounds the ranking and positioning passes of big graphs: newrank's
    // single network simplex, and few simplex iterations (measured in
    // docs/reference.md, "The dashboard": a 3,000-node fan-out took 2.2 s
    // of CPU without these, 0.5 s with them).
    SetAttr(graph, "newrank", "true");
    SetAttr(graph, "nslimit", "0.1");
    SetAttr(graph, "nslimit1", "0.1");
    SetAttr(graph, "mclimit", "0.3");
  }
  std::vector<Agnode_t*> nodes(n);
  for (size_t i = 0; i < n; ++i) {
    // Nodes are named by index: a name may hold anything.
    nodes[i] = agnode(graph, const_cast<char*>(std::to_string(i).c_str()), 1);
    double width = std::clamp(kCharWidth * static_cast<double>(shape.names[i].size()) + 24,
                              kMinWidth, kMaxWidth);
    const std::string& kind = shape.kinds[i];
    double height = kind == "map" || kind == "call" || kind == "loop" ? kMapHeight : kHeight;
    SetAttr(nodes[i], "shape", "box");
    SetAttr(nodes[i], "fixedsize", "true");
    SetAttr(nodes[i], "label", "");
    SetAttr(nodes[i], "width", std::to_string(width / 72.0));
    SetAttr(nodes[i], "height", std::to_string(height / 72.0));
  }
  // One Graphviz edge per distinct pair; repeated pairs share its path.
  std::map<std::pair<size_t, size_t>, Agedge_t*> edges;
  for (const auto& pair : shape.edges) {
    if (!edges.count(pair)) {
      edges[pair] = agedge(graph, nodes[pair.first], nodes[pair.second], nullptr, 1);
    }
  }
  if (gvLayout(g_gvc, graph, "dot") != 0) {
    agclose(graph);
    return Status::Error(ErrorKind::kPermanent,
                         "Graphviz could not lay the graph out (is its dot layout plugin "
                         "installed? libgvc6 carries it)");
  }
  Placement placement;
  boxf bb = GD_bb(graph);
  placement.width = Round1(bb.UR.x - bb.LL.x);
  placement.height = Round1(bb.UR.y - bb.LL.y);
  // Graphviz's y points up; the page's down.
  auto x_of = [&](double x) { return x - bb.LL.x; };
  auto y_of = [&](double y) { return bb.UR.y - y; };
  for (Agnode_t* node : nodes) {
    placement.nodes.push_back({Round1(x_of(ND_coord(node).x)), Round1(y_of(ND_coord(node).y)),
                               Round1(ND_width(node) * 72), Round1(ND_height(node) * 72)});
  }
  for (const auto& pair : shape.edges) {
    Agedge_t* edge = edges[pair];
    std::string d;
    splines* spl = ED_spl(edge);
    if (spl != nullptr) {
      for (int b = 0; b < spl->size; ++b) {
        const bezier& bz = spl->list[b];
        if (bz.size == 0) continue;
        if (bz.sflag) {
          d += "M" + Number(x_of(bz.sp.x)) + "," + Number(y_of(bz.sp.y)) + "L";
        } else {
          d += "M";
        }
        d += Number(x_of(bz.list[0].x)) + "," + Number(y_of(bz.list[0].y));
        for (int i = 1; i + 2 < bz.size; i += 3) {
          d += "C";
          for (int j = 0; j < 3; ++j) {
            if (j > 0) d += " ";
            d += Number(x_of(bz.list[i + j].x)) + "," + Number(y_of(bz.list[i + j].y));
          }
        }
        if (bz.eflag) d += "L" + Number(x_of(bz.ep.x)) + "," + Number(y_of(bz.ep.y));
      }
    }
    placement.paths.push_back(std::move(d));
  }
  gvFreeLayout(g_gvc, graph);
  agclose(graph);
  return placement;
}

uint64_t GraphLayout::computed() const {
  MutexLock lock(&mu_);
  return computed_;
}

Result<std::string> GraphLayout::AddLayout(std::string_view graph_json) {
  rapidjson::Document doc;
  doc.Parse(graph_json.data(), graph_json.size());
  if (doc.HasParseError()) {
    return Bad("a JSON syntax error at byte " + std::to_string(doc.GetErrorOffset()));
  }
  if (!doc.IsObject()) return Bad("not an object");
  auto nodes_it = doc.FindMember("nodes");
  auto edges_it = doc.FindMember("edges");
  if (nodes_it == doc.MemberEnd() || !nodes_it->value.IsArray()) return Bad("no \"nodes\" array");
  if (edges_it == doc.MemberEnd() || !edges_it->value.IsArray()) return Bad("no \"edges\" array");
  rapidjson::Value& nodes = nodes_it->value;
  rapidjson::Value& edges = edges_it->value;
  if (nodes.Size() > kMaxLayoutNodes) {
    return Status::Error(ErrorKind::kPermanent,
                         "the graph has " + std::to_string(nodes.Size()) +
                             " nodes; layouts are made for at most " +
                             std::to_string(kMaxLayoutNodes));
  }
  Shape shape;
  std::unordered_map<std::string, size_t> index;
  for (rapidjson::SizeType i = 0; i < nodes.Size(); ++i) {
    const rapidjson::Value& node = nodes[i];
    if (!node.IsObject() || !node.HasMember("name") || !node["name"].IsString()) {
      return Bad("node " + std::to_string(i) + " has no \"name\" string");
    }
    std::string name = node["name"].GetString();
    std::string kind;
    if (node.HasMember("kind") && node["kind"].IsString()) kind = node["kind"].GetString();
    kind = kind.substr(0, kind.find(','));
    if (!index.emplace(name, i).second) return Bad("node '" + name + "' appears twice");
    shape.names.push_back(std::move(name));
    shape.kinds.push_back(std::move(kind));
  }
  for (rapidjson::SizeType i = 0; i < edges.Size(); ++i) {
    const rapidjson::Value& edge = edges[i];
    if (!edge.IsObject() || !edge.HasMember("from") || !edge["from"].IsString() ||
        !edge.HasMember("to") || !edge["to"].IsString()) {
      return Bad("edge " + std::to_string(i) + " has no \"from\" and \"to\" strings");
    }
    auto from = index.find(edge["from"].GetString());
    auto to = index.find(edge["to"].GetString());
    if (from == index.end() || to == index.end()) {
      return Bad("edge " + std::to_string(i) + " names a node that is not in \"nodes\"");
    }
    shape.edges.emplace_back(from->second, to->second);
  }

  std::string key = ShapeKey(shape);
  Placement placement;
  bool cached = false;
  {
    MutexLock lock(&mu_);
    auto found = index_.find(key);
    if (found != index_.end()) {
      lru_.splice(lru_.begin(), lru_, found->second);
      placement = found->second->second;
      cached = true;
    }
  }
  if (!cached) {
    auto made = LayOut(shape);
    if (!made.ok()) return made.status();
    placement = *made;
    MutexLock lock(&mu_);
    ++computed_;
    if (!index_.count(key)) {
      lru_.emplace_front(std::move(key), placement);
      index_.emplace(lru_.front().first, lru_.begin());
      if (lru_.size() > kMaxCached) {
        index_.erase(lru_.back().first);
        lru_.pop_back();
      }
    }
  }

  auto& alloc = doc.GetAllocator();
  for (rapidjson::SizeType i = 0; i < nodes.Size(); ++i) {
    const NodeBox& box = placement.nodes[i];
    nodes[i].AddMember("x", box.x, alloc);
    nodes[i].AddMember("y", box.y, alloc);
    nodes[i].AddMember("w", box.w, alloc);
    nodes[i].AddMember("h", box.h, alloc);
  }
  for (rapidjson::SizeType i = 0; i < edges.Size(); ++i) {
    edges[i].AddMember("path", rapidjson::Value(placement.paths[i].c_str(), alloc), alloc);
  }
  rapidjson::Value layout(rapidjson::kObjectType);
  layout.AddMember("width", placement.width, alloc);
  layout.AddMember("height", placement.height, alloc);
  doc.RemoveMember("layout");
  doc.AddMember("layout", layout, alloc);
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace keel::service
