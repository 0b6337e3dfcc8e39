#pragma once
// How the CLI tells what a parked run waits for, and how to continue it with
// a command that works as printed. Free functions; call from one thread.

#include <string>

#include "engine/runner.h"
#include "engine/workflow.h"

namespace keel::cli {

// `text` quoted for a POSIX shell when it needs it ("a b" -> 'a b').
std::string ShellQuote(const std::string& text);
// " --db PATH" when the user gave --db, else "": what a printed command
// needs to reach the same database.
std::string DbArg(const std::string& db_flag);

// What a waiting node waits for, from its wait info (NodeRecord::output_json
// of a waiting node, engine/wait_node.h), as of wall time `now`:
// "signal 'approve' (times out 2026-12-05 10:00:00, in 23h59m)" or
// "timer due 2026-12-05 10:00:00 (in 2.0s)".
std::string DescribeWait(const std::string& info_json, double now);

// After a run ended waiting: on stderr, each waiting node, what it waits for,
// and the commands that continue the run (`keel signal ... --data JSON`,
// then `keel resume ...`), with --db when `db_flag` is not empty. A
// distributed run needs no resume: workers continue it when its signal or
// timer comes.
void PrintWaitHint(const RunReport& report, const WorkflowSpec& workflow,
                   const std::string& db_flag, bool distributed = false);

}  // namespace keel::cli
