#pragma once
// Small file helpers for integration tests. Free functions; safe from any thread.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace keel::testing {

// The contents of `path`, or nullopt when it cannot be opened.
std::optional<std::string> ReadFile(const std::string& path);

// Replaces `path` with `contents`. Throws std::runtime_error on failure.
void WriteFile(const std::string& path, const std::string& contents);

bool FileExists(const std::string& path);

// How often each line occurs in `text` (a side-effect log, one name a line).
std::map<std::string, int> CountLines(const std::string& text);

// Calls `condition` every few milliseconds until it returns true (then true)
// or `timeout` has passed (then false).
bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

}  // namespace keel::testing
