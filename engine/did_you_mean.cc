#include "engine/did_you_mean.h"

#include <algorithm>
#include <vector>

namespace keel {
namespace {

// Insertions, deletions, substitutions and swaps of two neighbours
// ("mokc" -> "mock" is one edit): the optimal string alignment distance.
size_t EditDistance(std::string_view a, std::string_view b) {
  const size_t w = b.size() + 1;
  std::vector<size_t> d((a.size() + 1) * w);
  for (size_t j = 0; j < w; ++j) d[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    d[i * w] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t best = std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1,
                              d[(i - 1) * w + j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        best = std::min(best, d[(i - 2) * w + j - 2] + 1);
      }
      d[i * w + j] = best;
    }
  }
  return d[a.size() * w + b.size()];
}

// Another form of the same word (`retries` for `retry`): they share a stem
// of at least 4 letters that leaves the shorter at most one letter more and
// the longer at most three.
bool SameStem(std::string_view a, std::string_view b) {
  size_t common = 0;
  while (common < a.size() && common < b.size() && a[common] == b[common]) ++common;
  return common >= 4 && common + 1 >= std::min(a.size(), b.size()) &&
         common + 3 >= std::max(a.size(), b.size());
}

}  // namespace

std::string DidYouMean(std::string_view word, std::span<const std::string_view> candidates,
                       size_t max_edits) {
  std::string_view best;
  size_t best_distance = max_edits + 1;
  for (std::string_view candidate : candidates) {
    size_t d = EditDistance(word, candidate);
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  for (size_t i = 0; best.empty() && i < candidates.size(); ++i) {
    if (SameStem(word, candidates[i])) best = candidates[i];
  }
  if (best.empty()) return "";
  return " (did you mean '" + std::string(best) + "'?)";
}

std::string DidYouMean(std::string_view word, std::span<const std::string_view> candidates) {
  return DidYouMean(word, candidates, std::clamp<size_t>(word.size() / 3, 1, 3));
}

std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates) {
  std::vector<std::string_view> views(candidates.begin(), candidates.end());
  return DidYouMean(word, std::span<const std::string_view>(views));
}

}  // namespace keel
