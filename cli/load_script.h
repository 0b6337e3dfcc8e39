#pragma once
// Loads the workflow file a command names (`keel run`, `graph`, `validate`),
// reporting a script that does not load. Call from one thread.

#include <map>
#include <memory>
#include <string>

#include "scripts/workflow_loader.h"

namespace keel::cli {

// Loads `path` with `provider_urls` and `quotas` (LoadOptions), on an HTTP loop whose
// thread also runs the timers of the script's clock (LoadedScript::clock,
// which commands hand to the Runner too). On failure prints the loader's
// messages (which already name file:line and node) on stderr and returns
// null.
std::shared_ptr<LoadedScript> LoadScript(
    const std::string& path, const std::map<std::string, std::string>& provider_urls = {},
    std::shared_ptr<QuotaSource> quotas = nullptr);

}  // namespace keel::cli
