// GraphLayout (service/graph_layout.h) without a server: the layout it adds
// (every node placed inside the drawing, y pointing down, edges ending on
// their target), the cache keyed by shape and not status (bounded, least
// recently used out first), and clear errors for what is not a graph JSON.

#include "service/graph_layout.h"

#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "tests/support/json.h"

namespace keel::service {
namespace {

using keel::testing::Json;

constexpr int kTimeoutS = 60;

// a -> b1, b2, b3 -> c, with `status` on every node.
std::string FanGraph(const std::string& status, const std::string& prefix = "") {
  std::string nodes, edges;
  auto node = [&](const std::string& name, const std::string& kind) {
    if (!nodes.empty()) nodes += ",";
    nodes += "{\"name\":\"" + prefix + name + "\",\"kind\":\"" + kind + "\",\"status\":\"" +
             status + "\"}";
  };
  auto edge = [&](const std::string& from, const std::string& to) {
    if (!edges.empty()) edges += ",";
    edges += "{\"from\":\"" + prefix + from + "\",\"to\":\"" + prefix + to + "\"}";
  };
  node("a", "fn");
  for (const char* b : {"b1", "b2", "b3"}) {
    node(b, "agent");
    edge("a", b);
    edge(b, "c");
  }
  node("c", "map, 3 items: 3 succeeded");
  return "{\"workflow\":\"w\",\"nodes\":[" + nodes + "],\"edges\":[" + edges + "]}";
}

Json Node(const Json& graph, const std::string& name) {
  for (size_t i = 0; i < graph["nodes"].Size(); ++i) {
    if (graph["nodes"][i]["name"].Str() == name) return graph["nodes"][i];
  }
  return Json::Null();
}

// The last point of an SVG path "M..C.. ..L x,y".
std::pair<double, double> LastPoint(const std::string& path) {
  size_t cut = path.find_last_of("MCL ");
  std::string last = path.substr(cut + 1);
  size_t comma = last.find(',');
  return {std::stod(last.substr(0, comma)), std::stod(last.substr(comma + 1))};
}

}  // namespace

TEST_CASE("the layout places every node inside the drawing, y down, edges on their targets" *
          doctest::timeout(kTimeoutS)) {
  GraphLayout layouts;
  auto laid = layouts.AddLayout(FanGraph("running"));
  REQUIRE(laid.ok());
  Json graph = Json::Parse(*laid);
  double width = graph["layout"]["width"].Num();
  double height = graph["layout"]["height"].Num();
  CHECK(width > 0);
  CHECK(height > 0);
  CHECK(graph["workflow"].Str() == "w");
  REQUIRE(graph["nodes"].Size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    Json node = graph["nodes"][i];
    CAPTURE(node.Dump());
    CHECK(node["status"].Str() == "running");  // kept
    CHECK(node["x"].Num() - node["w"].Num() / 2 >= -0.5);
    CHECK(node["x"].Num() + node["w"].Num() / 2 <= width + 0.5);
    CHECK(node["y"].Num() - node["h"].Num() / 2 >= -0.5);
    CHECK(node["y"].Num() + node["h"].Num() / 2 <= height + 0.5);
    CHECK(node["w"].Num() >= 90);
  }
  // Left to right: a, then the b's, then c; the map is taller.
  CHECK(Node(graph, "a")["x"].Num() < Node(graph, "b1")["x"].Num());
  CHECK(Node(graph, "b2")["x"].Num() < Node(graph, "c")["x"].Num());
  CHECK(Node(graph, "c")["h"].Num() > Node(graph, "a")["h"].Num());
  // Each edge's path ends at its target's left side, at a height within the
  // target's box: with y pointing up the b's would be mirrored and miss.
  REQUIRE(graph["edges"].Size() == 6);
  for (size_t i = 0; i < 6; ++i) {
    Json edge = graph["edges"][i];
    std::string path = edge["path"].Str();
    CAPTURE(path);
    REQUIRE(path.starts_with("M"));
    CHECK(path.find('C') != std::string::npos);
    auto [x, y] = LastPoint(path);
    Json to = Node(graph, edge["to"].Str());
    CHECK(std::abs(x - (to["x"].Num() - to["w"].Num() / 2)) < 3);
    CHECK(std::abs(y - to["y"].Num()) <= to["h"].Num() / 2 + 1);
  }
}

TEST_CASE("layouts are cached by shape, not status, in a bounded LRU" *
          doctest::timeout(kTimeoutS)) {
  GraphLayout layouts;
  auto first = layouts.AddLayout(FanGraph("pending"));
  REQUIRE(first.ok());
  auto second = layouts.AddLayout(FanGraph("succeeded"));
  REQUIRE(second.ok());
  CHECK(layouts.computed() == 1);
  CHECK(Json::Parse(*second)["nodes"][0]["status"].Str() == "succeeded");
  CHECK(Json::Parse(*second)["nodes"][0]["x"].Num() == Json::Parse(*first)["nodes"][0]["x"].Num());
  // Another shape is laid out; then kMaxCached more push the first out.
  REQUIRE(layouts.AddLayout(FanGraph("pending", "other_")).ok());
  CHECK(layouts.computed() == 2);
  for (size_t i = 0; i < GraphLayout::kMaxCached; ++i) {
    REQUIRE(layouts.AddLayout(FanGraph("pending", "n" + std::to_string(i) + "_")).ok());
  }
  CHECK(layouts.computed() == 2 + GraphLayout::kMaxCached);
  REQUIRE(layouts.AddLayout(FanGraph("pending")).ok());
  CHECK(layouts.computed() == 3 + GraphLayout::kMaxCached);
  // The most recent ones are still kept.
  std::string last = "n" + std::to_string(GraphLayout::kMaxCached - 1) + "_";
  REQUIRE(layouts.AddLayout(FanGraph("failed", last)).ok());
  CHECK(layouts.computed() == 3 + GraphLayout::kMaxCached);
}

TEST_CASE("what is not a graph JSON is refused with a message saying why" *
          doctest::timeout(kTimeoutS)) {
  GraphLayout layouts;
  struct Case {
    std::string json;
    std::string says;
  };
  for (const Case& c : {
           Case{"{\"nodes\": [", "syntax error"},
           Case{"[]", "not an object"},
           Case{"{\"edges\": []}", "\"nodes\""},
           Case{"{\"nodes\": [], \"edges\": 3}", "\"edges\""},
           Case{"{\"nodes\": [{\"kind\": \"fn\"}], \"edges\": []}", "node 0"},
           Case{"{\"nodes\": [{\"name\": \"a\"}, {\"name\": \"a\"}], \"edges\": []}", "twice"},
           Case{"{\"nodes\": [{\"name\": \"a\"}], \"edges\": [{\"from\": \"a\", \"to\": \"z\"}]}",
                "edge 0"},
       }) {
    CAPTURE(c.json);
    auto laid = layouts.AddLayout(c.json);
    REQUIRE(!laid.ok());
    CHECK(laid.status().message().find(c.says) != std::string::npos);
  }
  std::string big = "{\"nodes\": [";
  for (size_t i = 0; i <= kMaxLayoutNodes; ++i) {
    big += (i ? ",{\"name\":\"n" : "{\"name\":\"n") + std::to_string(i) + "\"}";
  }
  big += "], \"edges\": []}";
  auto refused = layouts.AddLayout(big);
  REQUIRE(!refused.ok());
  CHECK(refused.status().message().find("at most") != std::string::npos);
  CHECK(layouts.computed() == 0);
  // An empty graph is a graph.
  auto empty = layouts.AddLayout("{\"nodes\": [], \"edges\": []}");
  REQUIRE(empty.ok());
  CHECK(Json::Parse(*empty)["layout"].IsObject());
}

}  // namespace keel::service
