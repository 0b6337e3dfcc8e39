#include "service/response_cache.h"

namespace keel::service {

std::optional<std::string> ResponseCache::Get(
    const std::string& key, const std::function<std::optional<std::string>()>& make) {
  auto version = store_.DataVersion();
  auto now = std::chrono::steady_clock::now();
  if (version.ok()) {
    MutexLock lock(&mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.version == *version &&
        std::chrono::duration<double>(now - it->second.made).count() < kMaxAgeSeconds) {
      return it->second.body;
    }
  }
  std::optional<std::string> body = make();
  if (!body || !version.ok()) return body;
  MutexLock lock(&mu_);
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_[key] = Entry{*version, now, *body};
  return body;
}

}  // namespace keel::service
