// Replies keel must not trust, through the real `keel` binary against an
// in-test HTTP server: JSON nested far too deep, bytes that are not UTF-8,
// JSON output deeper than keel.json reads, a truncated reply, and URLs that
// are not HTTP. keel must neither crash nor store or print invalid UTF-8, and
// keel.llm must raise rather than return nil.
#include <doctest/doctest.h>
#include <httplib.h>

#include <string>
#include <thread>

#include "engine/utf8.h"
#include "tests/policy_test_util.h"

namespace keel::testing {
namespace {

std::string Nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A chat completion whose message content is `content_json` (a JSON value).
std::string Completion(const std::string& content_json, const std::string& extra = "",
                       const std::string& finish_reason = "stop") {
  return R"({"id":"c","model":"m",)" + extra + R"("choices":[{"index":0,"finish_reason":")" +
         finish_reason + R"(","message":{"role":"assistant","content":)" + content_json +
         R"(}}],"usage":{"prompt_tokens":5,"completion_tokens":2}})";
}

// An HTTP server on 127.0.0.1 answering by path: POST /NAME/chat/completions
// as an OpenAI-compatible model, GET /NAME for keel.http. Handlers run on
// the server's threads and touch no shared state.
class HostileServer {
 public:
  HostileServer() {
    server_.new_task_queue = [] { return new httplib::ThreadPool(8); };
    // Routes match any path and read the name from it: httplib's regex
    // captures race in its uninstrumented build under ThreadSanitizer.
    server_.Post(".*", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(ModelReply(FirstSegment(req.path)), "application/json");
    });
    server_.Get(".*", [](const httplib::Request& req, httplib::Response& res) {
      std::string name = FirstSegment(req.path);
      if (name == "deep") {
        res.set_content(R"({"deep":)" + Nested(150000) + "}", "application/json");
      } else {
        res.set_content("caf\xE9 cr\xE8me", "text/plain; charset=iso-8859-1");
        res.set_header("X-Note", "na\xEFve");
      }
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 10000 && !server_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(server_.is_running());
    // One request through first, so the server's worker threads are up
    // before keel's concurrent requests arrive.
    httplib::Client client("127.0.0.1", port_);
    REQUIRE(client.Get("/fine"));
  }
  ~HostileServer() {
    server_.stop();
    thread_.join();
  }

  std::string Url(const std::string& name) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + name;
  }

 private:
  // "deep" of "/deep/chat/completions".
  static std::string FirstSegment(const std::string& path) {
    size_t end = path.find('/', 1);
    return path.substr(1, end == std::string::npos ? std::string::npos : end - 1);
  }
  static std::string ModelReply(const std::string& name) {
    if (name == "deep") return Completion(R"("hi")", R"("deep":)" + Nested(150000) + ",");
    if (name == "latin1") return Completion("\"caf\xE9 \xFF\xFE\"");
    if (name == "json300") return Completion("\"" + Nested(300) + "\"");
    if (name == "length") return Completion(R"("Once upon a")", "", "length");
    return Completion(R"("fine")");
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST_CASE("hostile replies fail their calls cleanly; outputs stay valid UTF-8" *
          doctest::timeout(120)) {
  HostileServer server;
  Sandbox box(KEEL_BIN);
  std::string providers;
  for (const char* name : {"deep", "latin1", "json300", "length"}) {
    providers += std::string("keel.provider '") + name + "' { kind = 'openai', base_url = '" +
                 server.Url(name) + "', model = 'm' }\n";
  }
  auto agent = [](const std::string& name, const std::string& provider,
                  const std::string& extra = "") {
    return "  keel.agent '" + name + "' { provider = '" + provider +
           "', optional = true, prompt = 'x'" + extra + " },\n";
  };
  std::string wf =
      box.Write("hostile.lua",
                "local keel = require 'keel'\n" + providers + "return keel.workflow 'w' {\n" +
                    agent("deep_reply", "deep") + agent("latin1_reply", "latin1") +
                    agent("deep_output", "json300", ", output = 'json'") + agent("cut", "length") +
                    "  keel.fn 'llm_latin1' { run = function(ctx)\n"
                    "    local ok, err = pcall(keel.llm, { provider = 'latin1', prompt = 'x' })\n"
                    "    return { ok = ok, kind = err.kind, message = err.message }\n"
                    "  end },\n"
                    "  keel.fn 'llm_deep' { run = function(ctx)\n"
                    "    local ok, err = pcall(keel.llm, { provider = 'deep', prompt = 'x' })\n"
                    "    return { ok = ok, kind = err.kind }\n"
                    "  end },\n"
                    "  keel.fn 'http_deep' { run = function(ctx)\n"
                    "    local r = keel.http { url = '" +
                    server.Url("deep") +
                    "', timeout = 30 }\n"
                    "    return { status = r.status, has_json = r.json ~= nil, size = #r.body }\n"
                    "  end },\n"
                    "  keel.fn 'http_latin1' { run = function(ctx)\n"
                    "    local r = keel.http { url = '" +
                    server.Url("latin1") +
                    "', timeout = 30 }\n"
                    "    return { body = r.body, note = r.headers['x-note'] }\n"
                    "  end },\n"
                    "  keel.fn 'http_file' { run = function(ctx)\n"
                    "    local ok, err = pcall(keel.http, { url = 'file:///etc/passwd' })\n"
                    "    return { ok = ok, kind = err.kind, message = err.message }\n"
                    "  end },\n"
                    "}\n");
  std::vector<std::string> args{"run", wf, "--json"};
  ExitInfo r = box.KeelDb(args, kPrompt);
  INFO(r.Describe());
  REQUIRE_FALSE(r.timed_out);
  REQUIRE(r.exit_code == 3);  // degraded: the optional agents failed, nothing crashed
  CHECK(IsUtf8(r.out));
  CHECK(IsUtf8(r.err));
  Json run = Json::Parse(r.out);
  Json show = box.Show(run["run_id"].Str(), true);
  auto node = [&](const std::string& name) { return NodeEntry(show["nodes"], name); };

  for (const char* failed : {"deep_reply", "latin1_reply", "deep_output"}) {
    INFO(failed << ": " << node(failed).Dump());
    CHECK(node(failed)["status"].Str() == "failed");
    CHECK(node(failed)["error_kind"].Str() == "transient");
  }
  CHECK(node("deep_reply")["error"].Str().find("nested deeper than 200 levels") !=
        std::string::npos);
  CHECK(node("latin1_reply")["error"].Str().find("Invalid encoding in string") !=
        std::string::npos);
  CHECK(node("deep_output")["error"].Str().find("output is not valid JSON: invalid JSON at offset "
                                                "200: nested deeper than 200 levels") !=
        std::string::npos);

  // A reply cut at max_tokens is an answer; the event says why it ended.
  CHECK(run["outputs"]["cut"].Str() == "Once upon a");
  std::vector<Json> calls = Events(show, "llm_call", "cut");
  REQUIRE(calls.size() == 1);
  CHECK(calls[0]["data"]["finish_reason"].Str() == "length");

  Json llm_latin1 = run["outputs"]["llm_latin1"];
  CHECK_FALSE(llm_latin1["ok"].Bool());
  CHECK(llm_latin1["kind"].Str() == "transient");
  CHECK(llm_latin1["message"].Str().find("Invalid encoding in string") != std::string::npos);
  CHECK(run["outputs"]["llm_deep"]["kind"].Str() == "transient");

  Json http_deep = run["outputs"]["http_deep"];
  CHECK(http_deep["status"].Int() == 200);
  CHECK_FALSE(http_deep["has_json"].Bool());
  CHECK(http_deep["size"].Int() == 300009);
  CHECK(run["outputs"]["http_latin1"]["body"].Str() == "caf\xEF\xBF\xBD cr\xEF\xBF\xBDme");
  CHECK(run["outputs"]["http_latin1"]["note"].Str() == "na\xEF\xBF\xBDve");

  Json http_file = run["outputs"]["http_file"];
  CHECK_FALSE(http_file["ok"].Bool());
  CHECK(http_file["kind"].Str() == "permanent");
  CHECK(http_file["message"].Str().find("only http:// and https:// URLs are supported") !=
        std::string::npos);
  CHECK(http_file["message"].Str().find("root:") == std::string::npos);

  ExitInfo shown = box.KeelDb({"show", run["run_id"].Str(), "--json", "--events"});
  CHECK(IsUtf8(shown.out));
  ExitInfo runs = box.KeelDb({"runs", "--json"});
  CHECK(IsUtf8(runs.out));
}

}  // namespace
}  // namespace keel::testing
