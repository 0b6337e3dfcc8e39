// views/schedule_listing: what `keel schedules --json` writes reads back the
// same, and a malformed listing is refused naming what is wrong.
#include "views/schedule_listing.h"

#include <doctest/doctest.h>

namespace keel {
namespace {

TEST_CASE("a listing round-trips through its JSON") {
  ScheduleListingSet set;
  set.schedules.reserve(2);
  ScheduleListing& s = set.schedules.emplace_back();
  s.key = "a.lua#nightly";
  s.file = "a.lua";
  s.name = "nightly";
  s.index = 2;
  s.cron = "0 3 * * *";
  s.workflow = "report";
  s.params_json = R"({"n":2,"topic":"tea"})";
  s.script_path = "/w/a.lua";
  s.script_sha256 = "ab";
  s.script_text = "return \"\xc3\xa9\"\n";
  s.node_count = 4;
  s.next_tick = 1700000000;
  ScheduleListing copy = s;
  ScheduleListing& e = set.schedules.emplace_back(copy);
  e.key = "a.lua#3";
  e.name = "";
  e.index = 3;
  e.cron = "";
  e.every = 60;
  set.errors.push_back({"bad.lua", "bad.lua:1: boom"});
  JsonOut out;
  WriteScheduleListingJson(set, &out);
  auto read = ParseScheduleListingJson(out.Text());
  REQUIRE_MESSAGE(read.ok(), read.status().message());
  REQUIRE(read->schedules.size() == 2);
  const ScheduleListing& r = read->schedules[0];
  CHECK(r.key == s.key);
  CHECK(r.name == "nightly");
  CHECK(r.index == 2);
  CHECK(r.cron == "0 3 * * *");
  CHECK(r.every == 0);
  CHECK(r.params_json == s.params_json);
  CHECK(r.script_text == s.script_text);
  CHECK(r.node_count == 4);
  CHECK(r.next_tick == 1700000000);
  CHECK(read->schedules[1].name.empty());
  CHECK(read->schedules[1].every == 60);
  CHECK(read->schedules[1].cron.empty());
  REQUIRE(read->errors.size() == 1);
  CHECK(read->errors[0].error == "bad.lua:1: boom");
  CHECK(out.Text().find(R"("next_tick_at":"2023-11-14T22:13:20.000Z")") != std::string::npos);
}

TEST_CASE("a malformed listing is refused") {
  CHECK(ParseScheduleListingJson("").status().message() == "schedule listing: not a JSON object");
  CHECK(ParseScheduleListingJson(R"({"schedules": []})").status().message() ==
        "schedule listing: expected arrays 'schedules' and 'errors'");
  CHECK(ParseScheduleListingJson(R"({"schedules": [{"key": "k"}], "errors": []})")
            .status()
            .message() ==
        "schedule listing: schedule k lacks a field or has one of the wrong type");
  CHECK(ParseScheduleListingJson(R"({"schedules": [], "errors": [{"file": 1}]})")
            .status()
            .message() == "schedule listing: an error entry lacks 'file' or 'error'");
}

}  // namespace
}  // namespace keel
