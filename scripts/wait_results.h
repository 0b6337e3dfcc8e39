#pragma once
// What a Lua call that yielded (keel.llm, keel.http, keel.exec) resumes its
// coroutine with: (true, value) or (false, failure), as a WaitResult the
// waiting node hands to the coroutine's thread. Built on any thread; the
// returned closure runs on the thread that holds the coroutine's state.

#include <string>

#include "engine/status.h"
#include "scripts/active_node.h"

namespace keel {

// (true, `json` decoded); a value that cannot be decoded resumes with a
// failure of `kind`, "WHAT: why", never a silent nil.
WaitResult ResumeWithJson(std::string json, ErrorKind kind, std::string what);

// (false, a failure value for `status`, as keel.fail raises).
WaitResult ResumeWithFailure(Status status);

}  // namespace keel
