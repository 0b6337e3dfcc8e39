// EventData and the UTF-8 helpers: event data is always valid JSON in valid
// UTF-8, whatever numbers and bytes it is given.

#include "engine/event_data.h"

#include <doctest/doctest.h>

#include <limits>
#include <string>

#include "engine/utf8.h"

namespace keel {
namespace {

TEST_CASE("numbers JSON cannot hold are written as null") {
  std::string data = EventData()
                         .Add("cost", std::numeric_limits<double>::infinity())
                         .Add("neg", -std::numeric_limits<double>::infinity())
                         .Add("nan", std::numeric_limits<double>::quiet_NaN())
                         .Add("ok", 1.5)
                         .Done();
  CHECK(data == R"({"cost":null,"neg":null,"nan":null,"ok":1.5})");
}

TEST_CASE("strings that are not valid UTF-8 get U+FFFD for their bad bytes") {
  std::string data = EventData().Add("message", std::string_view("bad \xFF\xFE bytes")).Done();
  CHECK(data == "{\"message\":\"bad \xEF\xBF\xBD\xEF\xBF\xBD bytes\"}");
  CHECK(IsUtf8(data));
  CHECK(EventData().Add("m", "caf\xC3\xA9").Done() == "{\"m\":\"caf\xC3\xA9\"}");
}

TEST_CASE("IsUtf8 and ReplaceInvalidUtf8") {
  for (const std::string& valid :
       {std::string(""), std::string("plain"), std::string("\xE2\x82\xAC"),
        std::string("\xF0\x9F\x98\x80"), std::string("\xF4\x8F\xBF\xBF")}) {
    CAPTURE(valid);
    CHECK(IsUtf8(valid));
    CHECK(ReplaceInvalidUtf8(valid) == valid);
  }
  const std::string fffd = "\xEF\xBF\xBD";
  // Lone continuation, overlong, surrogate, above U+10FFFF, cut short.
  for (const std::string& bad :
       {std::string("\x80"), std::string("\xC0\xAF"), std::string("\xED\xA0\x80"),
        std::string("\xF4\x90\x80\x80"), std::string("\xE2\x82")}) {
    CAPTURE(bad);
    CHECK_FALSE(IsUtf8(bad));
    std::string fixed = ReplaceInvalidUtf8(bad);
    CHECK(IsUtf8(fixed));
    CHECK(fixed.find(fffd) == 0);
  }
  CHECK(ReplaceInvalidUtf8("a\xFF"
                           "b") == "a" + fffd + "b");
}

}  // namespace
}  // namespace keel
