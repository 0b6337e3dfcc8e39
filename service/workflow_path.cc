#include "service/workflow_path.h"

#include <sys/stat.h>

#include <climits>
#include <cstdlib>
#include <string_view>

namespace keel::service {
namespace {

WorkflowPath Refused(int status, std::string error) {
  WorkflowPath result;
  result.http_status = status;
  result.error = std::move(error);
  return result;
}

// The real path of `path`, or "" when it cannot be resolved.
std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  if (realpath(path.c_str(), buf) == nullptr) return "";
  return buf;
}

bool HasDotDot(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

WorkflowPath ResolveWorkflowPath(const std::string& root, const std::string& requested) {
  if (requested.find('\0') != std::string::npos) {
    return Refused(400, "workflow path contains a NUL byte");
  }
  const std::string quoted = "'" + requested + "'";
  if (requested.empty()) return Refused(400, "workflow path is empty");
  if (requested[0] == '/') {
    return Refused(400, "workflow " + quoted + " is absolute; give a path relative to --workflows");
  }
  if (HasDotDot(requested)) {
    return Refused(400, "workflow " + quoted + " contains '..'; give a path inside --workflows");
  }
  if (requested.size() < 4 || requested.compare(requested.size() - 4, 4, ".lua") != 0) {
    return Refused(400, "workflow " + quoted + " is not a .lua file");
  }
  const std::string real_root = RealPath(root);
  if (real_root.empty()) return Refused(404, "the --workflows directory cannot be read");
  const std::string real = RealPath(real_root + "/" + requested);
  if (real.empty()) return Refused(404, "no workflow " + quoted + " under --workflows");
  if (real.compare(0, real_root.size() + 1, real_root + "/") != 0) {
    return Refused(400, "workflow " + quoted + " leads outside --workflows (through a symlink)");
  }
  struct stat st {};
  if (stat(real.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Refused(404, "workflow " + quoted + " is not a file");
  }
  WorkflowPath result;
  result.path = real;
  return result;
}

}  // namespace keel::service
