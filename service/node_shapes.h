#pragma once
// NodeShapes: what each run's workflow says of its nodes (kind and
// dependencies), which the store does not hold, read from a child `keel
// graph RUN --format json` (the workflow is Lua, which the service does not
// load) and kept per run and script version, so a run's nodes cost one
// child between them.
// Thread-safe: any handler thread may call Lookup; the cache has one lock,
// which is not held while the child runs.

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "engine/mutex.h"
#include "service/service_options.h"
#include "views/node_view.h"

namespace keel::service {

class NodeShapes {
 public:
  explicit NodeShapes(const ServiceOptions& options) : options_(options) {}

  // The shape of `node` in `run`'s workflow; nullopt for a name that is not
  // one of its nodes (map items and inner nodes never are) or when the
  // child could not draw the run.
  std::optional<NodeShape> Lookup(const RunRecord& run, const std::string& node);

 private:
  using Shapes = std::map<std::string, NodeShape>;
  const ServiceOptions& options_;
  Mutex mu_;
  // By (run id, script version); at most 64 runs (one is dropped to make room).
  std::map<std::pair<std::string, int>, Shapes> cache_ GUARDED_BY(mu_);
};

}  // namespace keel::service
