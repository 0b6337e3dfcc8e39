#pragma once
// FUZZ_CHECK: what a fuzz target asserts about a parser's result. A failed
// check prints the condition and aborts, which libFuzzer reports as a crash
// and saves the input. Free functions; any thread.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#define FUZZ_CHECK(cond, what)                                                               \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s (%s:%d): %s\n", #cond, __FILE__, __LINE__, \
                   std::string(what).c_str());                                               \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace keel::fuzz {

// `input` split at the first "\n\n": the head (the part before) and the rest.
// Without one, the head is empty and the rest is all of `input`.
inline std::pair<std::string_view, std::string_view> SplitHead(std::string_view input) {
  size_t blank = input.find("\n\n");
  if (blank == std::string_view::npos) return {std::string_view(), input};
  return {input.substr(0, blank), input.substr(blank + 2)};
}

}  // namespace keel::fuzz
