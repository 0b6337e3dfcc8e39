#pragma once
// DidYouMean: suggests the intended word for a misspelt option or kind name.

#include <span>
#include <string>
#include <string_view>

namespace keel {

// " (did you mean 'after'?)" when one of `candidates` is within a small edit
// distance of `word`; otherwise "". Ties go to the earliest candidate.
std::string DidYouMean(std::string_view word, std::span<const std::string_view> candidates);

}  // namespace keel
