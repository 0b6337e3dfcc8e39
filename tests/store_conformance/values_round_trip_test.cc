// Values round-trip exactly: doubles at the edges of their range, 64-bit
// integers past a double's precision, unicode and control characters,
// bytes that are not UTF-8, a 1 MiB JSON text, and an empty output apart
// from none.

#include <cmath>
#include <limits>

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

const std::vector<double> kDoubles = {0.1,
                                      1e-300,
                                      1.7976931348623157e308,
                                      4.9406564584124654e-324,  // the smallest subnormal
                                      2.2250738585072014e-308,
                                      1733389200.123456789,
                                      0.30000000000000004,
                                      -0.0,
                                      -2.5e-10,
                                      123456789012345.67};

// Every character from 0x01 to 0x7f, and unicode beyond the BMP.
std::string Awkward() {
  std::string text;
  for (int c = 1; c < 0x80; ++c) text += static_cast<char>(c);
  text += "ünïcödé — 漢字 🙂 e\u0301 \u200b 'quoted' \"double\" \\back\\slash $1 %s ?";
  return text;
}

TEST_CASE("doubles round-trip exactly through every record" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  for (size_t i = 0; i < kDoubles.size(); ++i) {
    const double x = kDoubles[i];
    CAPTURE(x);
    const std::string id = "r" + std::to_string(i);
    RunRecord run = MakeRun(id, x);
    run.heartbeat = x;
    run.updated_at = x;
    REQUIRE_OK(store->CreateRun(run));
    NodeRecord node = MakeNode(id, "n");
    node.started_at = x;
    node.finished_at = x;
    store->SaveNode(node);
    store->AppendEvent({id, 0, x, "n", "e", "{}"});
    Flushed(*store);
    RunRecord got = RunOf(*store, id);
    CHECK(got.created_at == x);
    CHECK(got.heartbeat == x);
    CHECK(got.updated_at == x);
    auto nodes = Must(store->GetNodes(id));
    REQUIRE(nodes.size() == 1);
    CHECK(nodes[0].started_at == x);
    CHECK(nodes[0].finished_at == x);
    auto events = Must(store->GetEvents(id));
    REQUIRE(events.size() == 1);
    CHECK(events[0].ts == x);
    store->FinishRun(id, RunStatus::kFailed, "", x);
    store->Heartbeat(id, x);
    Flushed(*store);
    CHECK(RunOf(*store, id).finished_at == x);
    CHECK(RunOf(*store, id).heartbeat == x);
  }
}

TEST_CASE("a breaker's opening and cooldown round-trip exactly" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  for (size_t i = 0; i < kDoubles.size(); ++i) {
    const double x = kDoubles[i];
    auto breaker = store->UpdateBreaker("r" + std::to_string(i), [x](BreakerSnapshot& s) {
      s.opened_at = x;
      s.cooldown = x;
    });
    REQUIRE_OK(breaker);
  }
  auto rows = Must(db->OpenSecond()->ListBreakers());
  REQUIRE(rows.size() == kDoubles.size());
  for (const BreakerRow& row : rows) {
    const double x = kDoubles.at(std::stoul(row.key.substr(1)));
    CAPTURE(x);
    CHECK(row.snapshot.opened_at == x);
    CHECK(row.snapshot.cooldown == x);
  }
}

// The window and the probes are kept as JSON, read back at full precision.
TEST_CASE("a breaker's window and probe times round-trip exactly" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  for (size_t i = 0; i < kDoubles.size(); ++i) {
    const double x = kDoubles[i];
    auto breaker = store->UpdateBreaker("b" + std::to_string(i), [x](BreakerSnapshot& s) {
      s.recent = {{x, 1}};
      s.probes = {ProbeLease{1, Owner{1, "h", 1}, x, x}};
    });
    REQUIRE_OK(breaker);
  }
  auto rows = Must(db->OpenSecond()->ListBreakers());
  REQUIRE(rows.size() == kDoubles.size());
  for (const BreakerRow& row : rows) {
    const double x = kDoubles.at(std::stoul(row.key.substr(1)));
    CAPTURE(x);
    REQUIRE(row.snapshot.recent.size() == 1);
    CHECK(row.snapshot.recent[0].at == x);
    REQUIRE(row.snapshot.probes.size() == 1);
    CHECK(row.snapshot.probes[0].started_at == x);
    CHECK(row.snapshot.probes[0].renewed_at == x);
  }
}

TEST_CASE("64-bit integers round-trip exactly" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  const int64_t big = std::numeric_limits<int64_t>::max();
  const int64_t odd = 9007199254740993;  // 2^53 + 1: not a double
  RunRecord run = MakeRun("r1");
  run.owner = {odd, "h", big};
  run.node_count = std::numeric_limits<int32_t>::max();
  REQUIRE_OK(store->CreateRun(run));
  NodeRecord node = MakeNode("r1", "n");
  node.attempts = std::numeric_limits<int32_t>::max();
  store->SaveNode(node);
  store->AppendEvent({"r1", 0, 1, "n", "llm_call",
                      R"({"prompt_tokens":1099511627777,"completion_tokens":1,"cost":0})"});
  Flushed(*store);
  RunRecord got = RunOf(*store, "r1");
  CHECK(got.owner.pid == odd);
  CHECK(got.owner.start_ticks == big);
  CHECK(got.node_count == std::numeric_limits<int32_t>::max());
  CHECK(Must(store->GetNodes("r1")).at(0).attempts == std::numeric_limits<int32_t>::max());
  auto listed = Must(store->ListRuns({}));
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].usage.prompt_tokens == 1099511627777);  // 2^40 + 1
}

TEST_CASE("a breaker's 64-bit counts and probe ids round-trip exactly" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  const int64_t big = std::numeric_limits<int64_t>::max();
  const int64_t odd = 9007199254740993;  // 2^53 + 1: not a double
  (void)Must(store->UpdateBreaker("k", [&](BreakerSnapshot& s) {
    s.calls = big;
    s.failed = odd;
    s.probes = {ProbeLease{big, Owner{odd, "h", big}, 1, 2}};
  }));
  auto rows = Must(store->ListBreakers());
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].snapshot.calls == big);
  CHECK(rows[0].snapshot.failed == odd);
  REQUIRE(rows[0].snapshot.probes.size() == 1);
  CHECK(rows[0].snapshot.probes[0].id == big);
  CHECK(rows[0].snapshot.probes[0].owner.pid == odd);
  CHECK(rows[0].snapshot.probes[0].owner.start_ticks == big);
}

TEST_CASE("unicode, quotes and control characters round-trip in every text" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  const std::string text = Awkward();
  const std::string json = R"({"s":"ünïcödé 🙂 \u0000 \"q\" \\ \n"})";
  RunRecord run = MakeRun("r-ü🙂");
  run.workflow = text;
  run.script_path = "/tmp/ü 🙂/wf.lua";
  run.script_text = text;
  run.params_json = json;
  run.config_json = json;
  run.owner.host = "hôst-🙂";
  run.modules = {ScriptModule{"ü.mod", "/tmp/ü.lua", "aa", text}};
  REQUIRE_OK(store->CreateRun(run));
  NodeRecord node = MakeNode(run.id, "n-ü🙂[3]");
  node.output_json = json;
  node.error_message = text;
  store->SaveNode(node);
  store->AppendEvent({run.id, 0, 1, node.node, "kïnd", json});
  store->FinishRun(run.id, RunStatus::kWaiting, text, 2);
  Flushed(*store);

  auto other = db->OpenSecond();
  RunRecord got = RunOf(*other, run.id);
  CHECK(got.workflow == text);
  CHECK(got.script_path == run.script_path);
  CHECK(got.script_text == text);
  CHECK(got.params_json == json);
  CHECK(got.config_json == json);
  CHECK(got.owner.host == "hôst-🙂");
  CHECK(got.error == text);
  auto versions = Must(other->GetScriptVersions(run.id));
  REQUIRE(versions.size() == 1);
  REQUIRE(versions[0].modules.size() == 1);
  CHECK(versions[0].modules[0].name == "ü.mod");
  CHECK(versions[0].modules[0].text == text);
  auto nodes = Must(other->GetNodes(run.id));
  REQUIRE(nodes.size() == 1);
  CHECK(nodes[0].node == node.node);
  CHECK(nodes[0].output_json == json);
  CHECK(nodes[0].error_message == text);
  auto events = Must(other->GetEvents(run.id));
  REQUIRE(events.size() == 1);
  CHECK(events[0].node == node.node);
  CHECK(events[0].kind == "kïnd");
  CHECK(events[0].data_json == json);
  CHECK(RunOf(*other, "r-ü").id == run.id);  // a unicode prefix
}

TEST_CASE("a signal's name and data round-trip exactly" * doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "r1");
  const std::string json = R"({"s":"ünïcödé 🙂 \u0000 \"q\" \\ \n", "n": 1.0e-300})";
  std::string big = "[";
  while (big.size() < (1u << 20)) big += "\"ünïcode 🙂 padding\",";
  big += "0]";
  REQUIRE_OK(store->SendSignal("r1", "sïg 🙂", json, 3));
  REQUIRE_OK(store->SendSignal("r1", "big", big, 3));
  auto other = db->OpenSecond();
  CHECK(Must(store->TakeSignal("r1", "sïg 🙂", "w", 4)) == std::optional<std::string>(json));
  CHECK(Must(other->TakeSignal("r1", "big", "w2", 4)) == std::optional<std::string>(big));
}

// SQLite keeps any bytes. PostgreSQL keeps text as UTF-8: it refuses a
// script that is not (clearly, before anything runs), and records the
// bytes of a record that are not UTF-8 as U+FFFD rather than failing the
// write (docs/reference.md, "PostgreSQL").
TEST_CASE("text that is not UTF-8: kept byte for byte, or refused in scripts and replaced in records" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  // Latin-1 in a script's comment, a lone continuation byte, a truncated
  // sequence, an overlong encoding.
  const std::string bytes = "-- caf\xe9 \x80 \xc3 \xc0\xaf \xff\xfe end!";
  const bool utf8_only = std::string_view(KEEL_STORE_BACKEND) == "postgres";
  RunRecord run = MakeRun("r1");
  run.script_text = bytes;
  if (utf8_only) {
    Status refused = store->CreateRun(run);
    CHECK(refused.kind() == ErrorKind::kPermanent);
    CHECK(refused.message().find("UTF-8") != std::string::npos);
    CHECK(refused.message().find(run.script_path) != std::string::npos);
    run.script_text = "-- café";
  }
  REQUIRE_OK(store->CreateRun(run));
  NodeRecord node = MakeNode("r1", "n", NodeStatus::kFailed);
  node.error_message = bytes;
  store->SaveNode(node);
  store->AppendEvent({"r1", 0, 1, "n", "note", bytes});
  if (utf8_only) store->AppendEvent({"r1", 0, 1, "n", "nul", std::string("a\0b", 3)});
  Flushed(*store);
  REQUIRE_OK(store->WriteHealth());
  const std::string kept = Must(store->GetNodes("r1")).at(0).error_message;
  const std::string event = Must(store->GetEvents("r1")).at(0).data_json;
  if (utf8_only) {
    const std::string replaced = "-- caf\uFFFD \uFFFD \uFFFD \uFFFD\uFFFD \uFFFD\uFFFD end!";
    CHECK(kept == replaced);
    CHECK(event == replaced);
    CHECK(Must(store->GetEvents("r1")).at(1).data_json == "a\uFFFDb");
  } else {
    CHECK(RunOf(*store, "r1").script_text == bytes);
    CHECK(Must(store->GetScriptVersions("r1")).at(0).script_text == bytes);
    CHECK(kept == bytes);
    CHECK(event == bytes);
  }
}

TEST_CASE("a 1 MiB JSON text round-trips, and an empty output is not a missing one" *
          doctest::timeout(120)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  std::string big = "{\"items\":[";
  for (int i = 0; big.size() < (1u << 20); ++i) {
    if (i > 0) big += ',';
    big += "{\"i\":" + std::to_string(i) + ",\"s\":\"ünïcode 🙂 " + std::to_string(i * 7) + "\"}";
  }
  big += "]}";
  RunRecord run = MakeRun("r1");
  run.script_text = big;
  run.params_json = big;
  REQUIRE_OK(store->CreateRun(run));
  NodeRecord large = MakeNode("r1", "large");
  large.output_json = big;
  NodeRecord empty = MakeNode("r1", "empty");
  empty.output_json = "";
  NodeRecord none = MakeNode("r1", "none");
  none.output_json = std::nullopt;
  store->SaveNode(large);
  store->SaveNode(empty);
  store->SaveNode(none);
  store->AppendEvent({"r1", 0, 1, "large", "big", big});
  store->AppendEvent({"r1", 0, 1, "", "note", "{}"});
  Flushed(*store);

  auto other = db->OpenSecond();
  RunRecord got = RunOf(*other, "r1");
  CHECK(got.script_text.size() == big.size());
  CHECK(got.script_text == big);
  CHECK(got.params_json == big);
  auto nodes = Must(other->GetNodes("r1"));
  REQUIRE(nodes.size() == 3);
  CHECK(nodes[0].output_json == big);
  CHECK(nodes[1].output_json == std::optional<std::string>(""));
  CHECK_FALSE(nodes[2].output_json.has_value());
  auto events = Must(other->GetEvents("r1"));
  REQUIRE(events.size() == 2);
  CHECK(events[0].data_json == big);
  CHECK(events[1].node.empty());
  CHECK(events[1].kind == "note");
}

TEST_CASE("a big text and an empty output read back through the node and cursor reads" *
          doctest::timeout(120)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  Create(*store, "r1");
  const std::string big = "\"" + std::string(1 << 20, 'x') + "\"";
  NodeRecord empty = MakeNode("r1", "empty");
  empty.output_json = "";
  NodeRecord none = MakeNode("r1", "none");
  none.output_json = std::nullopt;
  NodeRecord large = MakeNode("r1", "large");
  large.output_json = big;
  store->SaveNode(empty);
  store->SaveNode(none);
  store->SaveNode(large);
  store->AppendEvent({"r1", 0, 1, "large", "big", big});
  Flushed(*store);
  auto e = Must(store->GetNode("r1", "empty"));
  REQUIRE(e.has_value());
  CHECK(e->output_json == std::optional<std::string>(""));
  auto n = Must(store->GetNode("r1", "none"));
  REQUIRE(n.has_value());
  CHECK_FALSE(n->output_json.has_value());
  CHECK(Must(store->GetNode("r1", "large"))->output_json == big);
  auto cursor = Must(store->ReadEventsAfter(0, "r1", 10));
  REQUIRE(cursor.size() == 1);
  CHECK(cursor[0].event.data_json == big);
  CHECK(Must(store->GetEventsAfter("r1", 0, 10)).at(0).data_json == big);
}

}  // namespace
}  // namespace keel::conformance
