// DidYouMean: misspellings and other forms of a word find their candidate;
// unrelated words find nothing.
#include "engine/did_you_mean.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace keel {
namespace {

const std::vector<std::string> kOptions = {"after", "retry", "timeout", "params", "prompt"};

TEST_CASE("a near miss or another form of the word is suggested") {
  CHECK(DidYouMean("aftr", kOptions) == " (did you mean 'after'?)");
  CHECK(DidYouMean("promt", kOptions) == " (did you mean 'prompt'?)");
  CHECK(DidYouMean("retries", kOptions) == " (did you mean 'retry'?)");
  CHECK(DidYouMean("timeouts", kOptions) == " (did you mean 'timeout'?)");
  CHECK(DidYouMean("aftre", kOptions) == " (did you mean 'after'?)");  // a swap is one edit
  CHECK(DidYouMean("mokc", std::vector<std::string>{"mock", "fast"}) == " (did you mean 'mock'?)");
}

TEST_CASE("an unrelated word gets no suggestion") {
  CHECK(DidYouMean("x", kOptions).empty());
  CHECK(DidYouMean("model", kOptions).empty());
  CHECK(DidYouMean("retain", kOptions).empty());
  CHECK(DidYouMean("afternoon", kOptions).empty());
}

}  // namespace
}  // namespace keel
