#include "cli/load_script.h"

#include <cstdio>
#include <system_error>

#include "engine/clock.h"

namespace keel::cli {

std::shared_ptr<LoadedScript> LoadScript(const std::string& path,
                                         const std::map<std::string, std::string>& provider_urls,
                                         std::shared_ptr<QuotaSource> quotas) {
  LoadOptions options;
  try {
    options.http = std::make_shared<HttpLoop>(SystemClock());
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "cannot start the HTTP loop: %s\n", e.what());
    return nullptr;
  }
  // One thread for all waiting: the HTTP loop's thread runs the timers too.
  options.clock = options.http->clock();
  options.provider_urls = provider_urls;
  options.quotas = std::move(quotas);
  auto loaded = LoadWorkflowFile(path, options);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().message().c_str());
    return nullptr;
  }
  return std::move(loaded).value();
}

}  // namespace keel::cli
