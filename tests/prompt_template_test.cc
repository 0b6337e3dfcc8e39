// PromptTemplate: parsing and rendering of {{params...}} / {{deps...}} fields.
#include <doctest/doctest.h>

#include "nodes/prompt_template.h"

namespace keel {

TEST_CASE("fields render strings as they are and other values as JSON") {
  auto t = PromptTemplate::Parse("About {{ params.topic }}: {{deps.outline}} / {{deps.search.hits.1.title}}!");
  REQUIRE(t.ok());
  REQUIRE(t->fields().size() == 3);
  CHECK(t->fields()[2].path == std::vector<std::string>{"deps", "search", "hits", "1", "title"});
  auto text = t->Render(MakeJson(R"({"topic":"breakers"})"),
                        {{"outline", MakeJson(R"(["a",1])")},
                         {"search", MakeJson(R"({"hits":[{"title":"x"},{"title":"y"}]})")}});
  REQUIRE(text.ok());
  CHECK(*text == R"(About breakers: ["a",1] / y!)");
}

TEST_CASE("text without fields renders unchanged; a missing dependency renders empty") {
  auto plain = PromptTemplate::Parse("no fields { here }");
  REQUIRE(plain.ok());
  CHECK(*plain->Render(MakeJson("{}"), {}) == "no fields { here }");
  auto t = PromptTemplate::Parse("[{{deps.skipped}}]");
  REQUIRE(t.ok());
  CHECK(*t->Render(MakeJson("{}"), {}) == "[]");
}

TEST_CASE("a missing field at run time names the field") {
  auto t = PromptTemplate::Parse("{{deps.a.b}} {{deps.a.list.5}}");
  REQUIRE(t.ok());
  auto missing = t->Render(MakeJson("{}"), {{"a", MakeJson(R"({"c":1,"list":[1]})")}});
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().kind() == ErrorKind::kPermanent);
  CHECK(missing.status().message() == "{{deps.a.b}}: no field 'b'");
  auto t2 = PromptTemplate::Parse("{{deps.a.list.5}}");
  auto out_of_range = t2->Render(MakeJson("{}"), {{"a", MakeJson(R"({"list":[1]})")}});
  CHECK(out_of_range.status().message() == "{{deps.a.list.5}}: no item '5' in a list of 1");
}

TEST_CASE("bad templates are refused when parsed") {
  CHECK(PromptTemplate::Parse("open {{params.x").status().message().find("never closed") !=
        std::string::npos);
  CHECK(PromptTemplate::Parse("{{}}").status().message() == "empty field '{{}}'");
  CHECK(PromptTemplate::Parse("{{ctx.node}}").status().message().find("params.NAME or deps.NODE") !=
        std::string::npos);
  CHECK(PromptTemplate::Parse("{{params}}").status().message().find("params.NAME") !=
        std::string::npos);
  CHECK(PromptTemplate::Parse("{{params..x}}").status().message().find("empty segment") !=
        std::string::npos);
}


TEST_CASE("a keel.map item's fields render from the item and its index" * doctest::timeout(10)) {
  auto t = PromptTemplate::Parse("#{{index}}: {{item.text}} / {{item}}");
  REQUIRE(t.ok());
  auto out = t->Render(MakeJson("{}"), {}, MakeJson("{\"text\":\"alpha\"}"), 3);
  REQUIRE(out.ok());
  CHECK(*out == "#3: alpha / {\"text\":\"alpha\"}");
  // Outside a map there is no item: a template that wants one fails rather
  // than rendering as nothing.
  auto none = t->Render(MakeJson("{}"), {});
  REQUIRE_FALSE(none.ok());
  CHECK(none.status().kind() == ErrorKind::kPermanent);
  CHECK(none.status().message() == "{{index}} is only set in the items of a keel.map");
  auto whole = PromptTemplate::Parse("{{index}}/{{item}}");
  REQUIRE(whole.ok());
  auto null_item = whole->Render(MakeJson("{}"), {}, MakeJson("null"), 1);
  REQUIRE(null_item.ok());
  CHECK(*null_item == "1/null");
  CHECK_FALSE(PromptTemplate::Parse("{{index.x}}").ok());
}

}  // namespace keel
