#pragma once
// ResponseCache: answers kept for GET requests whose answer depends only on
// the database and the clock (the run listing), reused while nothing was
// committed to the database (Store::DataVersion unchanged) and for at most
// kMaxAgeSeconds, so that statuses derived from the time (a run whose
// process died shows interrupted) are never older than that. Without it
// every listing re-runs its query; with it, a dashboard polling the list
// costs one cheap version check per request.
//
// Thread-safety: any worker thread; the entries are guarded by mu_.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "engine/mutex.h"
#include "engine/store.h"

namespace keel::service {

class ResponseCache {
 public:
  static constexpr double kMaxAgeSeconds = 1.0;
  // Entries kept at most; the cache is emptied when it would grow past it.
  static constexpr size_t kMaxEntries = 256;

  explicit ResponseCache(Store& store) : store_(store) {}

  // The body kept for `key` if still current; else runs `make`, which
  // returns the body to send and keep (or nullopt: an error, not kept,
  // already written by `make`).
  std::optional<std::string> Get(const std::string& key,
                                 const std::function<std::optional<std::string>()>& make);

 private:
  struct Entry {
    int64_t version;
    std::chrono::steady_clock::time_point made;
    std::string body;
  };
  Store& store_;
  Mutex mu_;
  std::map<std::string, Entry> entries_ GUARDED_BY(mu_);
};

}  // namespace keel::service
