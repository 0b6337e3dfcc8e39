#include "engine/node_status.h"

namespace keel {
namespace {
constexpr std::string_view kNodeNames[] = {"pending", "running",   "succeeded", "failed",
                                           "skipped", "cancelled", "fallback",  "waiting"};
constexpr std::string_view kRunNames[] = {"running",     "succeeded", "failed",   "degraded",
                                          "interrupted", "waiting",   "cancelled", "queued"};

template <typename E, size_t N>
bool ParseName(const std::string_view (&names)[N], std::string_view name, E* out) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == name) {
      *out = static_cast<E>(i);
      return true;
    }
  }
  return false;
}
}  // namespace

std::string_view NodeStatusName(NodeStatus status) { return kNodeNames[static_cast<int>(status)]; }
bool ParseNodeStatus(std::string_view name, NodeStatus* status) {
  return ParseName(kNodeNames, name, status);
}
std::string_view RunStatusName(RunStatus status) { return kRunNames[static_cast<int>(status)]; }
bool ParseRunStatus(std::string_view name, RunStatus* status) {
  return ParseName(kRunNames, name, status);
}

}  // namespace keel
