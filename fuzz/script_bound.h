#pragma once
// What the loader targets add around a fuzz-made script (lua_bound.cc,
// script_file.cc). One thread.
//
// The loader runs a script's top level without a bound on time (keel runs
// whatever the user wrote, and Ctrl-C stops it), so a fuzz-made
// `while true do end` would hang the fuzzer. lua_bound.cc wraps
// luaL_loadbufferx (linked with -Wl,--wrap=luaL_loadbufferx): the first
// load into a state, the script's own chunk, first installs a count hook
// that fails the script after kScriptInstructions instructions, and takes
// away what reaches files, processes and the terminal (os.execute,
// os.remove, io.open, io.read, dofile, require of files, ...). libFuzzer's
// -timeout stays the bound for time spent inside one C function (a string
// pattern match).

#include <string>
#include <string_view>

namespace keel::fuzz {

inline constexpr long kScriptInstructions = 2'000'000;

// Writes `text` to flow.lua in a directory of this process (made once,
// under $TMPDIR) and returns the file's path.
std::string WriteScript(std::string_view text);

// Loads `text` as a workflow file (through WriteScript, on a fake clock,
// with a 64 MiB memory cap) and checks what the loader says: a failure is
// kPermanent with a message; a success has a main workflow.
void LoadScript(std::string_view text);

}  // namespace keel::fuzz
