#pragma once
// Loads the workflow file a command names (`keel run`, `graph`, `validate`),
// reporting a script that does not load. Call from one thread.

#include <memory>
#include <string>

#include "scripts/workflow_loader.h"

namespace keel::cli {

// Loads `path` with the system clock. On failure prints the loader's messages
// (which already name file:line and node) on stderr and returns null.
std::shared_ptr<LoadedScript> LoadScript(const std::string& path);

}  // namespace keel::cli
