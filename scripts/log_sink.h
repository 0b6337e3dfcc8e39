#pragma once
// Where a script's lines (keel.log, print) go: stderr, unless the command
// has set a sink, such as the line progress display, which writes them in
// order with its own lines. Process-wide; safe from any thread (one lock
// guards the sink, and is held while the sink runs, so a sink is never
// called after SetLogSink has replaced it).

#include <functional>
#include <string_view>

namespace keel {

using LogSink = std::function<void(std::string_view text)>;

// Sends later lines to `sink` (an empty function: back to stderr).
void SetLogSink(LogSink sink);

// Writes `text` (one or more whole lines, each ending in '\n') to the sink or
// stderr. Write errors are ignored: a closed stderr must not stop a run.
void WriteLogLines(std::string_view text);

}  // namespace keel
