#pragma once
// RunStartApi: starting runs over HTTP, and the machinery behind it — the child
// processes (ChildRuns), the fenced hand-off (RunLauncher) and the
// dispatcher/supervisor thread (RunSupervisor).
//
//   POST /api/v1/runs              {"workflow": "dir/file.lua", "params": {...}}
//        -> 201 {"run_id", "status": "queued"}; a `keel submit` child checks
//           the file and params (bounded by a timeout) and queues the run.
//   POST /api/v1/runs/ID/resume    {"from": NODE} (body optional)
//        -> 202 {"run_id", "status": "running"} once a child claimed it.
//   POST /api/v1/runs/ID/fork      {"from": NODE, "params": {...}}
//        -> 201 {"run_id", "status": "queued"}; `keel fork --queue` records
//           the fork, the dispatcher starts it.
// Errors are {"error": ...}: 400 bad body, path or params; 404 unknown run or
// file; 409 a run that runs, succeeded (resume without from) or was
// cancelled; 503 every --max-runs slot is taken (resume).
//
// Thread-safety: handlers run on the server's threads; what they share is
// ChildRuns' and RunLauncher's, each under its own lock. Start/Stop from the
// service's main thread.

#include <chrono>
#include <memory>

#include "engine/store.h"
#include "service/child_runs.h"
#include "service/component.h"
#include "service/run_launcher.h"
#include "service/run_supervisor.h"
#include "service/service_options.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace keel::service {

class RunStartApi : public Component {
 public:
  // `options` and `store` must outlive it.
  RunStartApi(const ServiceOptions& options, Store* store);
  ~RunStartApi() override;

  void Register(httplib::Server& server) override;
  void Start() override;
  void Stop() override;

  ChildRuns& children() { return children_; }
  // How long a checking child (`keel submit`, `keel fork --queue`) may
  // take, loading the script, before it is killed (default 20 s). Call
  // before the server starts.
  void set_check_timeout(std::chrono::milliseconds timeout) { check_timeout_ = timeout; }

 private:
  void PostRun(const httplib::Request& request, httplib::Response& response);
  void PostResume(const httplib::Request& request, httplib::Response& response);
  void PostFork(const httplib::Request& request, httplib::Response& response);

  const ServiceOptions& options_;
  Store* const store_;
  ChildRuns children_;
  RunLauncher launcher_;
  RunSupervisor supervisor_;
  std::chrono::milliseconds check_timeout_ = std::chrono::seconds(20);
};

}  // namespace keel::service
