#pragma once
// RunsApi: the read side of /api/v1 and the write actions that are one
// store call each (DESIGN.md §9), in the shapes of the CLI's --json:
//   GET  /api/v1/runs                 (status, workflow, limit, before)
//   GET  /api/v1/runs/ID              (events=true adds the event log)
//   GET  /api/v1/runs/ID/events       (after=SEQ, limit=N)
//   GET  /api/v1/runs/ID/graph        (through a child `keel graph --format json`;
//                                      layout=dot adds a Graphviz layout)
//   GET  /api/v1/breakers           (summary=true: with the aggregate)
//   POST /api/v1/runs/ID/cancel
//   POST /api/v1/runs/ID/signals/NAME (body: the signal's data; empty: null)
//   POST /api/v1/breakers/reset, POST /api/v1/breakers/KEY/reset
//   POST /api/v1/breakers/KEY/force-open, /disable, /close
// ID is a run id or a unique prefix of one. Handlers run on any worker
// thread; they share the store, which is safe from any thread, and the
// cache of listings, which has its own lock.

#include "engine/store.h"
#include "service/component.h"
#include "service/graph_layout.h"
#include "service/response_cache.h"
#include "service/service_options.h"

namespace keel::service {

// Listings return at most this many runs, events pages this many events.
inline constexpr int kMaxRunsPerPage = 500;
inline constexpr int kMaxEventsPerPage = 5000;

class RunsApi final : public Component {
 public:
  RunsApi(const ServiceOptions& options, Store& store)
      : options_(options), store_(store), cache_(store) {}
  void Register(httplib::Server& server) override;

 private:
  const ServiceOptions& options_;
  Store& store_;
  ResponseCache cache_;  // the run listings
  GraphLayout layouts_;  // graph?layout=dot
};

}  // namespace keel::service
