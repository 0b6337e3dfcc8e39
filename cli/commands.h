#pragma once
// The keel subcommands. main.cc parses the arguments into these structs and
// calls one function, whose return value is the process exit code (see
// exit_codes.h). Each command prints its own errors. Called from the main
// thread only.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/llm_options.h"
#include "engine/status.h"
#include "engine/store.h"

namespace keel {
struct LoadedScript;
}  // namespace keel

namespace keel::cli {

struct RunArgs {
  std::string file;
  std::vector<std::string> params;  // "key=value"
  std::string db;
  int workers = 0;       // 0: all cores
  int max_inflight = 0;  // 0: unlimited
  bool json = false;
  std::string durability = "normal";
  double storage_timeout = 30;  // seconds checkpoints may fail before the run stops
  LlmArgs llm;
  bool wait = false;  // wait nodes wait in this process instead of parking the run
  bool no_work = false;  // PostgreSQL: queue the run and wait, leaving it to workers
  std::string log_format = "text";  // progress on stderr: "text" or "json" (JSON lines)
};
int RunCommand(const RunArgs& args);
// `keel submit`: `keel run`'s checks, then the run recorded queued.
int SubmitCommand(const RunArgs& args);

struct ResumeArgs {
  std::string run_id;  // or a unique prefix
  std::string from;    // --from NODE: run NODE and what is downstream of it again
  std::vector<std::string> params;  // -p: refused (a resume keeps the run's params)
  std::string db;
  int workers = 0;
  int max_inflight = 0;
  bool json = false;
  std::string durability = "normal";
  double storage_timeout = 30;
  LlmArgs llm;
  bool wait = false;
  // --handoff-epoch (hidden): `keel serve` handed the run over at this epoch
  // (Store::HandOffRun) for this process to claim, whoever owns it; 0: none.
  int64_t handoff_epoch = 0;
  std::string log_format = "text";  // as RunArgs'
};
int ResumeCommand(const ResumeArgs& args);

struct ForkArgs {
  std::string run_id;               // or a unique prefix
  std::string from;                 // --from NODE; empty: every node runs
  std::vector<std::string> params;  // "key=value", over the recorded params
  std::string db;
  int workers = 0;
  int max_inflight = 0;  // 0: the recorded value
  bool json = false;
  std::string durability = "normal";
  double storage_timeout = 30;
  LlmArgs llm;  // over the recorded configuration
  bool queue = false;  // --queue: record the fork queued and print its id
  std::string log_format = "text";  // as RunArgs'
};
int ForkCommand(const ForkArgs& args);

struct RunsArgs {
  std::string status;    // empty: any
  std::string state;     // a live state (views/live_state.h); empty: any
  std::string workflow;  // empty: any
  int limit = 20;
  bool json = false;
  std::string db;
};
int RunsCommand(const RunsArgs& args);

struct ShowArgs {
  std::string run_id;
  bool events = false;
  bool items = false;  // list map items instead of their counts
  bool json = false;
  std::string db;
  std::string node;  // --node: show this node alone (cli/show_node.cc)
};
int ShowCommand(const ShowArgs& args);
int ShowNodeCommand(const ShowArgs& args);

struct BreakersArgs {
  std::string reset;       // a breaker key to delete; empty: none
  bool all = false;        // delete every breaker
  std::string force_open;  // a breaker key to force open; empty: none
  std::string disable;     // a breaker key to disable; empty: none
  std::string close;       // a breaker key to close; empty: none
  bool json = false;
  bool summary = false;  // --json: an object with the aggregate and the breakers
  std::string db;
};
int BreakersCommand(const BreakersArgs& args);

struct GcArgs {
  std::string older_than;
  std::string db;
};
int GcCommand(const GcArgs& args);

struct GraphArgs {
  std::string target;  // FILE.lua or RUN_ID
  std::string format = "dot";
  bool items = false;  // draw map items instead of their counts
  std::string db;
};
int GraphCommand(const GraphArgs& args);

struct SignalArgs {
  std::string run_id;  // or a unique prefix
  std::string name;
  std::optional<std::string> data;  // JSON; null when not given
  std::string db;
};
int SignalCommand(const SignalArgs& args);

struct CancelArgs {
  std::string run_id;  // or a unique prefix
  std::string db;
};
int CancelCommand(const CancelArgs& args);

struct ServeArgs {
  std::string listen = "127.0.0.1:7777";
  std::string db;
  std::string workflows = ".";
  bool auto_resume = false;
  std::string resume_grace = "10s";
  int max_resumes = 3;
  std::string token_env;
  int max_runs = 4;
  std::string notify;
  std::string web_dir;  // --web-dir (hidden): the dashboard from disk
};
int ServeCommand(const ServeArgs& args);

struct ValidateArgs {
  std::string file;
  bool json = false;  // print views/workflow_summary.h's JSON
};
int ValidateCommand(const ValidateArgs& args);

struct SchedulesArgs {
  std::string workflows = ".";  // --workflows DIR
  bool json = false;
};
int SchedulesCommand(const SchedulesArgs& args);

// `keel worker` (cli/worker_command.cc): runs ready nodes of any run in a
// PostgreSQL database until SIGTERM or SIGINT.
struct WorkerArgs {
  std::string db;
  int concurrency = 16;
  std::string lease = "15s";
};
int WorkerCommand(const WorkerArgs& args);
// `keel submit` and `keel run` when the database is PostgreSQL (`url`):
// the run is queued node by node for workers; `run` works on it too
// (unless --no-work) and waits for it.
int DistributedSubmit(const RunArgs& args, const std::string& url);
int DistributedRun(const RunArgs& args, const std::string& url,
                   std::shared_ptr<LoadedScript> loaded);
// `keel resume` of a run queued node by node: its unfinished nodes are
// queued again and this process works on it until it finishes.
int DistributedResume(const ResumeArgs& args, const std::string& url, const RunRecord& run);
// Whether run `run_id` (or a unique prefix) of the PostgreSQL database
// `url` was queued node by node; false when there is no such run.
Result<bool> IsDistributedRun(const std::string& url, const std::string& run_id);

}  // namespace keel::cli
