#include "cli/load_script.h"

#include <cstdio>

#include "engine/clock.h"

namespace keel::cli {

std::shared_ptr<LoadedScript> LoadScript(const std::string& path,
                                         const std::map<std::string, std::string>& provider_urls) {
  LoadOptions options;
  options.clock = SystemClock();
  options.provider_urls = provider_urls;
  auto loaded = LoadWorkflowFile(path, options);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().message().c_str());
    return nullptr;
  }
  return std::move(loaded).value();
}

}  // namespace keel::cli
