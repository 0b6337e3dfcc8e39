#pragma once
// GraphLayout: lays out a run's DAG (the graph JSON of views/graph_json.h)
// with Graphviz's dot (libgvc) for GET /api/v1/runs/ID/graph?layout=dot,
// adding to that JSON, in points with y pointing down:
//   "layout": {"width": W, "height": H}
//   each node: "x", "y" (its centre), "w", "h"
//   each edge: "path" (an SVG path `d`: M then cubic Béziers, ending on the
//               arrow's tip)
// Ranks run left to right (rankdir=LR): a wide fan-out stacks its short
// boxes downwards instead of spreading long names across the screen. Node
// boxes are sized from the name's length. Layouts are kept in a bounded LRU
// keyed by the graph's shape (node names, kinds without their counts, and
// edges; not statuses), so a refresh or a live update does not lay out
// again.
//
// Thread-safety: any thread. libgvc is not thread-safe, so every use of it
// is under one process-wide lock (a layout waits for the one running); the
// cache has its own lock and is never held while laying out.

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/mutex.h"
#include "engine/status.h"

namespace keel::service {

// Graphs with more nodes than this are refused (kPermanent) rather than
// holding the layout lock for minutes.
inline constexpr size_t kMaxLayoutNodes = 5000;

class GraphLayout {
 public:
  static constexpr size_t kMaxCached = 64;

  // `graph_json` with the layout added. Fails (kPermanent, with a message
  // saying what is wrong) when it is not a graph JSON (not an object, no
  // "nodes"/"edges" arrays, a node without a name, an edge naming an
  // unknown node), has too many nodes, or Graphviz fails.
  Result<std::string> AddLayout(std::string_view graph_json);

  // Layouts computed so far (not served from the cache).
  uint64_t computed() const;

  struct NodeBox {
    double x, y, w, h;
  };
  struct Placement {
    double width = 0, height = 0;
    std::vector<NodeBox> nodes;       // in the graph JSON's node order
    std::vector<std::string> paths;   // in its edge order
  };
  struct Shape {
    std::vector<std::string> names;
    std::vector<std::string> kinds;  // up to the first ',' (no counts)
    std::vector<std::pair<size_t, size_t>> edges;  // node indexes
  };

  // Lays `shape` out (under the libgvc lock). Fails when Graphviz does.
  static Result<Placement> LayOut(const Shape& shape);

 private:
  using Entry = std::pair<std::string, Placement>;  // (the shape as text, its layout)

  mutable Mutex mu_;
  std::list<Entry> lru_ GUARDED_BY(mu_);  // most recent first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_ GUARDED_BY(mu_);
  uint64_t computed_ GUARDED_BY(mu_) = 0;
};

}  // namespace keel::service
