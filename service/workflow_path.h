#pragma once
// Where a workflow file named by an API request is: a path relative to
// --workflows that must stay inside it. Free function; any thread.

#include <string>

namespace keel::service {

struct WorkflowPath {
  std::string path;   // absolute and resolved, when ok
  int http_status = 0;  // 0 when ok; else 400 (refused) or 404 (not there)
  std::string error;    // names the requested path
};

// Resolves `requested` under the directory `root`. Refused (400): an empty
// or absolute path, a NUL byte, a `..` component, a name not ending in
// `.lua`, and a path whose real location (symlinks followed, in the file or
// in a directory on the way) is outside `root`'s. 404: nothing (or no
// regular file) there.
WorkflowPath ResolveWorkflowPath(const std::string& root, const std::string& requested);

}  // namespace keel::service
