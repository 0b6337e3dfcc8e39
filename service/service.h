#pragma once
// Service: `keel serve` (DESIGN.md §9). Owns the store, the HTTP server and
// every component (service/component.h), built in one list in service.cc.
// Run() binds, prints "keel serve: listening on http://HOST:PORT" on stderr
// (the real port when 0 was asked for), serves until SIGTERM or SIGINT,
// then stops accepting, stops every component and returns 0. Child runs
// other components started are left running.
//
// Thread-safety: construct and Run on the main thread; request handlers run
// on the server's worker threads.

#include <memory>
#include <string>
#include <vector>

#include "engine/store.h"
#include "service/component.h"
#include "service/request_guard.h"
#include "service/service_options.h"

namespace httplib {
class Server;
}

namespace keel::service {

class Service {
 public:
  // `store` is open for writing. `token` is the bearer token requests need
  // (the value of options.token_env); empty for none.
  Service(ServiceOptions options, std::unique_ptr<Store> store, std::string token);
  ~Service();

  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Serves until SIGTERM or SIGINT. Returns the process exit code: 0 after
  // a clean shutdown, 2 when the address cannot be bound (said on stderr).
  int Run();

 private:
  const ServiceOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<httplib::Server> server_;
  RequestGuard guard_;
  std::vector<std::unique_ptr<Component>> components_;
};

}  // namespace keel::service
