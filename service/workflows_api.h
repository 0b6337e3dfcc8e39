#pragma once
// WorkflowsApi: GET /api/v1/workflows, the workflow files under --workflows
// for the dashboard's start page:
//   [{"file": "dir/x.lua", "workflow": NAME, "params": {defaults}, "nodes": N}
//    or {"file": "dir/x.lua", "error": TEXT} for a file that does not load]
// sorted by file. The files are found recursively (hidden names skipped,
// symlinked folders not entered, a symlinked file only when it stays inside
// --workflows; at most kMaxWorkflowFiles). Loading needs Lua, so each file
// is loaded by a child `keel validate --json` (views/workflow_summary.h),
// kParallelLoads at once, each stopped after kLoadTimeoutS; answers are
// kept by file, modification time and size, so only edited files load
// again. (A change to a module a file requires is not noticed until the
// file itself changes.)
//
// Thread-safety: handlers run on any worker thread; one listing runs at a
// time (mu_ guards the cache and serializes listings, so simultaneous
// requests do not load the same files twice). Stop (main thread) kills
// the children of a listing in progress.

#include <atomic>
#include <map>
#include <string>

#include "engine/mutex.h"
#include "service/component.h"
#include "service/service_options.h"

namespace keel::service {

inline constexpr size_t kMaxWorkflowFiles = 500;
inline constexpr int kParallelLoads = 4;
inline constexpr double kLoadTimeoutS = 5;

class WorkflowsApi final : public Component {
 public:
  explicit WorkflowsApi(const ServiceOptions& options) : options_(options) {}
  void Register(httplib::Server& server) override;
  void Stop() override { stopping_ = true; }

  // The listing's JSON array.
  std::string List();

 private:
  struct Entry {
    int64_t mtime_ns = 0;
    int64_t size = 0;
    double keep_until = 0;  // steady-clock seconds; HUGE_VAL: until the file changes
    std::string json;  // one element of the listing
  };

  const ServiceOptions& options_;
  std::atomic<bool> stopping_{false};
  Mutex mu_;
  std::map<std::string, Entry> cache_ GUARDED_BY(mu_);  // by file under --workflows
};

}  // namespace keel::service
