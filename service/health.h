#pragma once
// Health: /livez (200 while the process answers) and /readyz (200 when the
// database is reachable, writable and of the current schema, else 503 with
// the reason; Store::CheckReady). Breakers never affect either. Both paths
// are open without the token. Handlers run on any worker thread; the store
// is safe from any thread.

#include "engine/store.h"
#include "service/component.h"
#include "service/service_options.h"

namespace keel::service {

class Health final : public Component {
 public:
  Health(const ServiceOptions& options, Store& store) : store_(store) {}
  void Register(httplib::Server& server) override;

 private:
  Store& store_;
};

}  // namespace keel::service
