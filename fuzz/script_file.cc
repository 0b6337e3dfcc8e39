#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "engine/fake_clock.h"
#include "fuzz/fuzz_check.h"
#include "fuzz/script_bound.h"
#include "nodes/http_loop.h"
#include "scripts/workflow_loader.h"

namespace keel::fuzz {

std::string WriteScript(std::string_view text) {
  static const std::string dir = [] {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/keel-fuzz-XXXXXX";
    FUZZ_CHECK(mkdtemp(pattern.data()) != nullptr, pattern);
    return pattern;
  }();
  std::string path = dir + "/flow.lua";
  FILE* f = std::fopen(path.c_str(), "wb");
  FUZZ_CHECK(f != nullptr, path);
  FUZZ_CHECK(std::fwrite(text.data(), 1, text.size(), f) == text.size(), path);
  FUZZ_CHECK(std::fclose(f) == 0, path);
  return path;
}

void LoadScript(std::string_view text) {
  static FakeClock clock;
  static auto http = std::make_shared<HttpLoop>(&clock);
  LoadOptions options;
  options.clock = &clock;
  options.http = http;
  options.memory_limit = 64u << 20;
  auto loaded = LoadWorkflowFile(WriteScript(text), options);
  if (!loaded.ok()) {
    FUZZ_CHECK(loaded.status().kind() == ErrorKind::kPermanent, loaded.status().ToString());
    FUZZ_CHECK(!loaded.status().message().empty(), "");
    return;
  }
  const LoadedScript& script = **loaded;
  FUZZ_CHECK(script.main >= 0 && script.main < static_cast<int>(script.workflows.size()), "");
  FUZZ_CHECK(script.declarations.size() == script.workflows.size(), "");
}

}  // namespace keel::fuzz
