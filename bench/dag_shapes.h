#pragma once
// The DAG shapes the benchmarks run: a chain, a 1 -> W -> 1 fan-out/fan-in,
// and a layered DAG where each node waits for two nodes of the layer above.
// Pure functions; safe from any thread.

#include <string>
#include <vector>

namespace keel::bench {

enum class Shape { kChain, kFan, kLayered };

const char* ShapeName(Shape shape);

// deps[i] lists the nodes node i waits for; every dependency has a lower index.
std::vector<std::vector<int>> MakeDag(Shape shape, int n);

// A workflow file with the same DAG whose every node runs `function(ctx) end`.
std::string MakeScript(Shape shape, int n);

}  // namespace keel::bench
