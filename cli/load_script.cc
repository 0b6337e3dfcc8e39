#include "cli/load_script.h"

#include <cstdio>

#include "engine/clock.h"

namespace keel::cli {

std::shared_ptr<LoadedScript> LoadScript(const std::string& path) {
  LoadOptions options;
  options.clock = SystemClock();
  auto loaded = LoadWorkflowFile(path, options);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", loaded.status().message().c_str());
    return nullptr;
  }
  return std::move(loaded).value();
}

}  // namespace keel::cli
