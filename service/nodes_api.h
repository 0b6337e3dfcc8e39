#pragma once
// NodesApi: one node of a run, and a map's items, for the dashboard:
//   GET /api/v1/runs/ID/nodes/NAME              the node (views/node_view.h)
//   GET /api/v1/runs/ID/nodes/NAME/output       its whole output, as JSON
//   GET /api/v1/runs/ID/nodes/NAME/input/DEP    the whole output of dependency DEP
//   GET /api/v1/runs/ID/nodes/NAME/items        a map's items (offset, limit, status)
// NAME and DEP are percent-encoded path segments: a name with '/', '#', '[',
// ']', '%', '?' or a space is sent encoded ("c%2Ffetch", "m%5B3%5D"); the
// segments are split on the raw path, before decoding. Handlers run on any
// worker thread; they share the store (safe from any thread) and the node
// shapes (their own lock).

#include "engine/store.h"
#include "service/component.h"
#include "service/node_shapes.h"
#include "service/service_options.h"

namespace keel::service {

// Pages of map items hold at most this many.
inline constexpr int kMaxItemsPerPage = 1000;

class NodesApi final : public Component {
 public:
  NodesApi(const ServiceOptions& options, Store& store) : store_(store), shapes_(options) {}
  void Register(httplib::Server& server) override;

 private:
  Store& store_;
  NodeShapes shapes_;
};

}  // namespace keel::service
