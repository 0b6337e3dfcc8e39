// Fuzzes the workflow loader (LoadWorkflowFile, scripts/workflow_loader.h)
// on script text: the input is a whole workflow file, run with the bounds
// of fuzz/script_bound.h. Properties: no crash, no leak, no hang; see
// LoadScript for what is checked.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz/script_bound.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  keel::fuzz::LoadScript(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
