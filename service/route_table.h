#pragma once
// RouteTable: which methods each registered route answers, so that a
// request for a known path with another method gets 405 (with an Allow
// header) rather than 404. Filled once from the server after every
// component has registered its routes and before it listens; read-only
// afterwards, so safe from every worker thread.

#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace httplib {
class Server;
}

namespace keel::service {

class RouteTable {
 public:
  // Copies the route patterns `server` holds now.
  void Collect(const httplib::Server& server);

  // The methods whose routes match `path`, e.g. "GET, POST"; "" for none.
  std::string AllowedMethods(const std::string& path) const;

 private:
  std::vector<std::pair<std::string, std::regex>> routes_;  // (method, pattern)
};

}  // namespace keel::service
