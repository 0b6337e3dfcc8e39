#pragma once
// Component: one part of `keel serve` — its HTTP routes and its background
// work (the API, the event stream, metrics, the supervisor, the scheduler,
// alerts, ...). The Service (service/service.h) owns every component: it
// calls Register for each before the server listens, Start once the server
// is up, and Stop (on the main thread, during shutdown) before destroying
// them. Route handlers run on the HTTP server's worker threads, so whatever
// a handler touches must be safe from several threads at once.

namespace httplib {
class Server;
}

namespace keel::service {

class Component {
 public:
  virtual ~Component() = default;

  // Adds this component's routes. The server checks authentication, the
  // request size and cross-site requests before any handler runs.
  virtual void Register(httplib::Server& server) {}
  // Starts background threads, if any.
  virtual void Start() {}
  // Stops and joins them promptly (within a second or so); open streams end.
  virtual void Stop() {}
};

}  // namespace keel::service
