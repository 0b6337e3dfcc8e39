#include "engine/status.h"

namespace keel {
namespace {
struct KindName {
  ErrorKind kind;
  std::string_view name;
};
constexpr KindName kKindNames[] = {
    {ErrorKind::kNone, "ok"},
    {ErrorKind::kTimeout, "timeout"},
    {ErrorKind::kTransient, "transient"},
    {ErrorKind::kRateLimited, "rate_limited"},
    {ErrorKind::kPermanent, "permanent"},
    {ErrorKind::kCircuitOpen, "circuit_open"},
    {ErrorKind::kCancelled, "cancelled"},
    {ErrorKind::kError, "error"},
};
}  // namespace

std::string_view ErrorKindName(ErrorKind kind) {
  for (const auto& kn : kKindNames) {
    if (kn.kind == kind) return kn.name;
  }
  return "error";
}

bool ParseErrorKind(std::string_view name, ErrorKind* kind) {
  for (const auto& kn : kKindNames) {
    if (kn.name == name) {
      *kind = kn.kind;
      return true;
    }
  }
  return false;
}

std::string Status::ToString() const {
  if (ok()) return "ok";
  std::string out(ErrorKindName(kind_));
  out += ": ";
  out += message_;
  return out;
}

}  // namespace keel
