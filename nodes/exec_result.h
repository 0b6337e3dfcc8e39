#pragma once
// What an exec node (keel.exec) makes of a finished program: the error
// kind of its exit status and its stdout as the node's output. Free
// functions; any thread.

#include <map>
#include <string>
#include <string_view>

#include "engine/status.h"
#include "nodes/child_process.h"

namespace keel {

enum class ExecOutput {
  kText,   // stdout as one string
  kJson,   // stdout parsed as one JSON value
  kLines,  // stdout as an array of its lines, without their line ends
};

// "text", "json" or "lines"; false for anything else.
bool ParseExecOutput(std::string_view name, ExecOutput* mode);

// How much of the end of stderr an error message quotes.
inline constexpr size_t kStderrTailInMessage = 2048;

// Ok when the program exited 0. Otherwise the failure, its message naming
// the program (`what`, e.g. "python3 train.py") and ending with the last
// kStderrTailInMessage bytes of stderr: the result's own failure (could not
// start, timeout, cancel, too much output) as it is; an exit code `exit_codes`
// maps, as that kind; any other non-zero exit, or a death by a signal (named,
// "SIGSEGV"), kTransient.
Status ExecStatus(const ProcessResult& result, const std::map<int, ErrorKind>& exit_codes,
                  const std::string& what);

// Stdout as the JSON text of the output `mode` makes of it. Text and lines
// have bytes that are not UTF-8 replaced (U+FFFD); json that does not parse
// fails kPermanent quoting the start of stdout.
Result<std::string> ExecOutputJson(ExecOutput mode, const std::string& stdout_data,
                                   const std::string& what);

// "python3 train.py --lr 0.1", each argument quoted when it holds spaces or
// quotes, the whole cut to about 200 bytes: how messages name a command.
std::string DescribeCommand(const std::vector<std::string>& argv);

}  // namespace keel
