#pragma once
// DidYouMean: suggests the intended word for a misspelt name — an option, a
// kind, a dependency or a fallback workflow. Free functions; safe from any
// thread.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace keel {

// " (did you mean 'after'?)" when one of `candidates` is at most `max_edits`
// edits (insertions, deletions, substitutions, swaps of neighbours) from
// `word`; otherwise "".
// The closest candidate wins; ties go to the earliest. Failing that, another
// form of a candidate ("retries" for "retry") is suggested.
std::string DidYouMean(std::string_view word, std::span<const std::string_view> candidates,
                       size_t max_edits);

// DidYouMean for an option or kind name: up to a third of the word's length
// in edits, at least 1 and at most 3 ("aftr" -> "after", but "x" suggests
// nothing).
std::string DidYouMean(std::string_view word, std::span<const std::string_view> candidates);

// The same over names held as strings.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace keel
