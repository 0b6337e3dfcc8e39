// SpentAndLimit: a cost budget message never shows spent and limit alike
// when they differ.
#include "engine/budget_text.h"

#include <doctest/doctest.h>

namespace keel {
namespace {

TEST_CASE("spent and limit read differently whenever they differ") {
  CHECK(SpentAndLimit(0.5, 0.25) == "0.5000 spent, limit 0.2500");
  CHECK(SpentAndLimit(0.00031, 0.0003) == "0.00031 spent, limit 0.0003");
  CHECK(SpentAndLimit(0.00030001, 0.0003) == "0.00030001 spent, limit 0.0003");
  CHECK(SpentAndLimit(0.0003 + 1e-15, 0.0003) != SpentAndLimit(0.0003, 0.0003));
  std::string tiny = SpentAndLimit(0.0003 + 1e-15, 0.0003);
  CHECK(tiny.substr(0, tiny.find(" spent")) != tiny.substr(tiny.find("limit ") + 6));
  CHECK(SpentAndLimit(2, 2) == "2.0000 spent, limit 2.0000");
}

}  // namespace
}  // namespace keel
