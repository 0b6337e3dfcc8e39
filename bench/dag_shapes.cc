#include "bench/dag_shapes.h"

#include <algorithm>

namespace keel::bench {
namespace {
constexpr int kLayerWidth = 100;
}

const char* ShapeName(Shape shape) {
  switch (shape) {
    case Shape::kChain:
      return "chain";
    case Shape::kFan:
      return "fan";
    default:
      return "layered";
  }
}

std::vector<std::vector<int>> MakeDag(Shape shape, int n) {
  std::vector<std::vector<int>> deps(n);
  for (int i = 1; i < n; ++i) {
    switch (shape) {
      case Shape::kChain:
        deps[i] = {i - 1};
        break;
      case Shape::kFan:
        if (i < n - 1) {
          deps[i] = {0};
        } else {
          for (int k = 1; k < n - 1; ++k) deps[i].push_back(k);
        }
        break;
      case Shape::kLayered: {
        int width = std::min(kLayerWidth, n);
        int layer = i / width, k = i % width;
        if (layer == 0) break;
        int above = (layer - 1) * width;
        deps[i] = {above + k};
        if (width > 1) deps[i].push_back(above + (k + 1) % width);
        break;
      }
    }
  }
  return deps;
}

std::string MakeScript(Shape shape, int n) {
  std::vector<std::vector<int>> deps = MakeDag(shape, n);
  std::string deps_lua = "local deps = {";
  for (const auto& d : deps) {
    deps_lua += "{";
    for (size_t k = 0; k < d.size(); ++k) deps_lua += (k ? "," : "") + std::to_string(d[k]);
    deps_lua += "},";
  }
  deps_lua += "}\n";
  return "local keel = require 'keel'\n" + deps_lua +
         "local function noop(ctx) end\n"
         "local spec = {}\n"
         "for i, d in ipairs(deps) do\n"
         "  local after = {}\n"
         "  for _, k in ipairs(d) do after[#after + 1] = 'n' .. k end\n"
         "  spec[#spec + 1] = keel.fn('n' .. (i - 1)) { after = after, run = noop }\n"
         "end\n"
         "return keel.workflow 'bench' (spec)\n";
}

}  // namespace keel::bench
