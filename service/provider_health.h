#pragma once
// ProviderHealth: `keel serve`'s view of the LLM providers declared with
// `keel.provider { health = { interval = S } }` in the workflow files under
// --workflows. The service never loads Lua, so a child `keel doctor
// --workflows DIR --list --json` finds them (again every
// `discovery_interval_s`), and each probe is a child `keel doctor FILE
// --provider NAME --json --timeout T`, killed if it overruns. One
// background thread probes each provider at its interval, one at a time,
// and keeps the latest result per provider name (the first file in path
// order wins a name declared twice).
//
// Routes: GET /api/v1/providers (the latest result of each, as `keel doctor
// --json` prints it: one serializer, views/provider_check.h) and POST
// /api/v1/providers/NAME/check (checks now, answers with the result).
// Results name a key's variable, never its value.
//
// Thread-safety: route handlers (server threads) and the probing thread
// share `entries_` under mu_; children run outside the lock.

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "engine/mutex.h"
#include "service/component.h"

namespace keel::service {

struct ProviderHealthOptions {
  std::string keel_path;               // the keel executable children run
  std::string workflows;               // the --workflows directory
  double check_timeout_s = 10;         // `keel doctor --timeout`
  double discovery_interval_s = 60;    // how often the files are looked at again
};

struct ServiceOptions;

// The component `keel serve` runs: its keel executable and --workflows.
std::unique_ptr<Component> MakeProviderHealth(const ServiceOptions& options);

class ProviderHealth : public Component {
 public:
  explicit ProviderHealth(ProviderHealthOptions options);
  ~ProviderHealth() override;

  void Register(httplib::Server& server) override;
  void Start() override;
  void Stop() override;

  // Runs the discovery child now and updates the provider list. Returns how
  // many providers have a health interval.
  int Discover();
  // Checks provider `name` now; its result (a JSON document), or "" when no
  // provider of that name has a health interval.
  std::string CheckNow(const std::string& name);
  // The latest results, a JSON array sorted by provider name.
  std::string ResultsJson();

 private:
  struct Entry {
    std::string file;  // relative to the workflows directory
    double interval = 0;
    std::string json;  // the latest result (or the listing, before the first check)
    double next_due = 0;  // steady seconds
  };
  void Loop();

  const ProviderHealthOptions options_;
  Mutex mu_;
  CondVar wake_;
  std::map<std::string, Entry> entries_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::atomic<bool> stopping_{false};  // kills the children running at Stop
  std::thread thread_;
};

}  // namespace keel::service
