#pragma once
// SpentAndLimit: the words of a cost budget message. Free function; any
// thread.

#include <string>

namespace keel {

// "0.00031 spent, limit 0.0003": both amounts with at least 4 decimals and
// as many more (up to 17 significant digits) as it takes for them to read
// differently whenever they differ, trailing zeros beyond the fourth decimal
// dropped.
std::string SpentAndLimit(double spent, double limit);

}  // namespace keel
