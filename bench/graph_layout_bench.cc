// How long Graphviz's dot takes to lay out the DAGs the dashboard draws
// (service/graph_layout.h), for three shapes of N nodes: a chain, a wide
// fan-out (one source, N-2 parallel nodes, one sink) and a layered random
// DAG (ranks of ~30 nodes, each with 1-3 deps in the rank above). Prints
// seconds per layout, and the time of a cached answer. `--quick`: 100 nodes
// (a smoke run for ctest); `--nodes N` to choose.

#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>

#include "service/graph_layout.h"

namespace {

using keel::service::GraphLayout;

std::string Json(const GraphLayout::Shape& shape) {
  std::string out = "{\"workflow\":\"bench\",\"nodes\":[";
  for (size_t i = 0; i < shape.names.size(); ++i) {
    if (i) out += ",";
    out += "{\"name\":\"" + shape.names[i] + "\",\"kind\":\"fn\",\"status\":\"pending\"}";
  }
  out += "],\"edges\":[";
  for (size_t i = 0; i < shape.edges.size(); ++i) {
    if (i) out += ",";
    out += "{\"from\":\"" + shape.names[shape.edges[i].first] + "\",\"to\":\"" +
           shape.names[shape.edges[i].second] + "\"}";
  }
  return out + "]}";
}

GraphLayout::Shape Named(size_t n) {
  GraphLayout::Shape shape;
  for (size_t i = 0; i < n; ++i) {
    shape.names.push_back("step_" + std::to_string(i));
    shape.kinds.push_back("fn");
  }
  return shape;
}

GraphLayout::Shape Chain(size_t n) {
  GraphLayout::Shape shape = Named(n);
  for (size_t i = 1; i < n; ++i) shape.edges.emplace_back(i - 1, i);
  return shape;
}

GraphLayout::Shape FanOut(size_t n) {
  GraphLayout::Shape shape = Named(n);
  for (size_t i = 1; i + 1 < n; ++i) {
    shape.edges.emplace_back(0, i);
    shape.edges.emplace_back(i, n - 1);
  }
  return shape;
}

GraphLayout::Shape Layered(size_t n) {
  GraphLayout::Shape shape = Named(n);
  std::mt19937 random(42);
  const size_t width = 30;
  for (size_t i = width; i < n; ++i) {
    size_t rank_start = (i / width - 1) * width;
    int deps = 1 + static_cast<int>(random() % 3);
    for (int d = 0; d < deps; ++d) {
      shape.edges.emplace_back(rank_start + random() % width, i);
    }
  }
  return shape;
}

double Seconds(const std::chrono::steady_clock::time_point& start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 1000;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) n = 100;
    if (std::strcmp(argv[i], "--nodes") == 0 && i + 1 < argc) n = std::strtoul(argv[++i], nullptr, 10);
  }
  struct Case {
    const char* name;
    GraphLayout::Shape shape;
  };
  Case cases[] = {{"chain", Chain(n)}, {"fan-out", FanOut(n)}, {"layered", Layered(n)}};
  std::printf("graph layout (dot, rankdir=LR), %zu nodes\n", n);
  for (Case& c : cases) {
    GraphLayout layouts;
    std::string json = Json(c.shape);
    auto start = std::chrono::steady_clock::now();
    std::clock_t cpu_start = std::clock();
    auto first = layouts.AddLayout(json);
    double laid = Seconds(start);
    double cpu = static_cast<double>(std::clock() - cpu_start) / CLOCKS_PER_SEC;
    if (!first.ok()) {
      std::fprintf(stderr, "%s: %s\n", c.name, first.status().message().c_str());
      return 1;
    }
    start = std::chrono::steady_clock::now();
    auto again = layouts.AddLayout(json);
    double cached = Seconds(start);
    if (!again.ok() || layouts.computed() != 1) {
      std::fprintf(stderr, "%s: the second answer was not cached\n", c.name);
      return 1;
    }
    std::printf("  %-8s %5zu edges  layout %.3f s (%.3f s CPU)  cached %.4f s  %zu bytes\n",
                c.name, c.shape.edges.size(), laid, cpu, cached, first->size());
  }
  return 0;
}
