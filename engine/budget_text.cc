#include "engine/budget_text.h"

#include <cstdio>

namespace keel {
namespace {

std::string Fixed(double value, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  std::string text = buf;
  size_t dot = text.find('.');
  if (dot != std::string::npos) {
    while (text.size() > dot + 5 && text.back() == '0') text.pop_back();
  }
  return text;
}

std::string General(double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", value);
  return buf;
}

}  // namespace

std::string SpentAndLimit(double spent, double limit) {
  for (int decimals = 4; decimals <= 12; ++decimals) {
    std::string a = Fixed(spent, decimals), b = Fixed(limit, decimals);
    if (a != b || spent == limit) return a + " spent, limit " + b;
  }
  return General(spent) + " spent, limit " + General(limit);
}

}  // namespace keel
