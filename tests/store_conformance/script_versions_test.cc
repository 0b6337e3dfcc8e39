// Script versions: a run's script and modules as version 1, a claim that
// adds a version only when a file changed (naming the files), nodes tagged
// with the version that wrote them, versions never overwritten.

#include "tests/store_conformance/conformance.h"

namespace keel::conformance {
namespace {

KEEL_CONFORMANCE_SUITE;

ScriptModule Module(const std::string& name, const std::string& sha) {
  return ScriptModule{name, "/tmp/" + name + ".lua", sha, "return {} -- " + sha};
}

RunRecord ConfiguredRun(const std::string& id) {
  RunRecord run = MakeRun(id);
  run.config_json = R"({"max_inflight":2})";
  run.modules = {Module("util", "aa"), Module("lib.text", "ab")};
  return run;
}

TEST_CASE("a run records its script version 1 with its modules in order" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  RunRecord created = ConfiguredRun("r1");
  created.created_at = 42.5;
  REQUIRE_OK(store->CreateRun(created));
  store->SaveNode(MakeNode("r1", "a"));
  Flushed(*store);

  RunRecord run = RunOf(*store, "r1");
  CHECK(run.script_version == 1);
  auto versions = Must(store->GetScriptVersions("r1"));
  REQUIRE(versions.size() == 1);
  const ScriptVersion& v1 = versions[0];
  CHECK(v1.version == 1);
  CHECK(v1.created_at == 42.5);
  CHECK(v1.script_path == "/tmp/wf.lua");
  CHECK(v1.script_sha256 == "00");
  CHECK(v1.script_text == run.script_text);
  REQUIRE(v1.modules.size() == 2);
  CHECK(v1.modules[0].name == "util");
  CHECK(v1.modules[0].path == "/tmp/util.lua");
  CHECK(v1.modules[0].sha256 == "aa");
  CHECK(v1.modules[0].text == "return {} -- aa");
  CHECK(v1.modules[1].name == "lib.text");
  CHECK(Must(store->GetNodes("r1")).at(0).script_version == 1);
}

TEST_CASE("a claim adds a version only when the script or a module changed" *
          doctest::timeout(60)) {
  KEEL_FRESH_BACKEND(db);
  auto store = db->Open();
  RunRecord run = ConfiguredRun("r1");
  REQUIRE_OK(store->CreateRun(run));
  store->FinishRun("r1", RunStatus::kFailed, "boom", 2);
  Flushed(*store);

  auto second = db->OpenSecond();
  RunRecord claim = run;
  claim.config_json = R"({"max_inflight":3})";
  auto same = second->ClaimRun(claim, 1, kDead);
  REQUIRE_MESSAGE(same.ok(), same.status().ToString());
  CHECK(same->script_version == 1);
  CHECK(same->changed_files.empty());
  CHECK(RunOf(*store, "r1").config_json == R"({"max_inflight":3})");
  CHECK(Must(store->GetScriptVersions("r1")).size() == 1);

  auto third = db->OpenSecond();
  claim.modules = {Module("util", "bb"), Module("extra", "cc")};  // lib.text gone
  claim.updated_at = 50;
  auto changed = third->ClaimRun(claim, same->epoch, kDead);
  REQUIRE_MESSAGE(changed.ok(), changed.status().ToString());
  CHECK(changed->script_version == 2);
  CHECK(changed->changed_files ==
        std::vector<std::string>{"/tmp/util.lua", "/tmp/extra.lua", "/tmp/lib.text.lua"});
  third->SaveNode(MakeNode("r1", "b"));
  Flushed(*third);

  auto versions = Must(store->GetScriptVersions("r1"));
  REQUIRE(versions.size() == 2);
  CHECK(versions[0].modules.size() == 2);  // version 1 is never overwritten
  CHECK(versions[0].modules[0].sha256 == "aa");
  CHECK(versions[1].version == 2);
  CHECK(versions[1].created_at == 50);  // the claim's time
  REQUIRE(versions[1].modules.size() == 2);
  CHECK(versions[1].modules[0].sha256 == "bb");
  CHECK(versions[1].modules[1].name == "extra");
  CHECK(RunOf(*store, "r1").script_version == 2);
  CHECK(FindNode(Must(store->GetNodes("r1")), "b")->script_version == 2);

  // A changed script is named by its path.
  auto fourth = db->OpenSecond();
  claim.script_text = "new text";
  claim.script_sha256 = "11";
  auto script = fourth->ClaimRun(claim, changed->epoch, kDead);
  REQUIRE_MESSAGE(script.ok(), script.status().ToString());
  CHECK(script->script_version == 3);
  CHECK(script->changed_files == std::vector<std::string>{"/tmp/wf.lua"});
  auto three = Must(store->GetScriptVersions("r1"));
  REQUIRE(three.size() == 3);
  CHECK(three[2].script_text == "new text");
  CHECK(three[1].script_text == run.script_text);
}

}  // namespace
}  // namespace keel::conformance
