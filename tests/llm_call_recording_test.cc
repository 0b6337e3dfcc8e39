// RecordedRequest / RecordedReply: the shapes an llm_call event records, the
// size cap (what is cut first, the marks, the cap held whatever the input)
// and the key kept out.
#include "nodes/llm_call_recording.h"

#include <doctest/doctest.h>

#include <string>

#include "tests/support/json.h"

namespace keel {
namespace {

using testing::Json;

ChatRequest Request(const std::string& messages_json) {
  ChatRequest request;
  request.system = "be brief";
  request.messages_json = messages_json;
  return request;
}

std::string UserMessage(const std::string& text) {
  return R"({"role":"user","content":")" + text + R"("})";
}

bool EndsWithCutMark(const std::string& text) {
  return text.size() > 10 && text.compare(text.size() - 10, 10, "bytes cut]") == 0;
}

}  // namespace

TEST_CASE("a small request and reply are recorded whole, tool calls as {id, name, arguments}") {
  ChatRequest request = Request(
      "[" + UserMessage("find it") +
      R"(,{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function",)"
      R"("function":{"name":"lookup","arguments":"{\"q\":\"x\"}"}}]},)"
      R"({"role":"tool","tool_call_id":"c1","content":"found"}])");
  request.tools.push_back(ToolSpec{"lookup", "looks up", R"({"type":"object"})"});
  Json recorded = Json::Parse(RecordedRequest(request, 32768, ""));
  CHECK(recorded["system"].Str() == "be brief");
  REQUIRE(recorded["messages"].Size() == 3);
  CHECK(recorded["messages"][0]["role"].Str() == "user");
  CHECK(recorded["messages"][0]["content"].Str() == "find it");
  Json call = recorded["messages"][1]["tool_calls"][0];
  CHECK(call["id"].Str() == "c1");
  CHECK(call["name"].Str() == "lookup");
  CHECK(call["arguments"].Str() == R"({"q":"x"})");
  CHECK(recorded["messages"][2]["tool_call_id"].Str() == "c1");
  CHECK(recorded["tools"].Dump() == R"(["lookup"])");
  CHECK(recorded["truncated"].IsNull());

  ChatResponse response;
  response.text = "answer";
  response.tool_calls.push_back(ToolCall{"c2", "lookup", R"({"q":"y"})"});
  Json reply = Json::Parse(RecordedReply(response, 32768, ""));
  CHECK(reply["content"].Str() == "answer");
  CHECK(reply["tool_calls"][0]["name"].Str() == "lookup");
  CHECK(reply["tool_calls"][0]["arguments"].Str() == R"({"q":"y"})");
  CHECK(reply["truncated"].IsNull());
}

TEST_CASE("the key is replaced wherever it shows, and bad UTF-8 is repaired") {
  const std::string key = "sk-secret-123456";
  ChatRequest request = Request("[" + UserMessage("my key is " + key) + "]");
  request.system = "key " + key + " \xff";
  std::string recorded = RecordedRequest(request, 32768, key);
  CHECK(recorded.find(key) == std::string::npos);
  CHECK(recorded.find("[redacted]") != std::string::npos);
  CHECK(Json::Parse(recorded)["system"].Str() == "key [redacted] \xEF\xBF\xBD");
  ChatResponse response;
  response.text = "echo " + key;
  response.tool_calls.push_back(ToolCall{"c", "t", "{\"k\":\"" + key + "\"}"});
  std::string reply = RecordedReply(response, 32768, key);
  CHECK(reply.find(key) == std::string::npos);
}

TEST_CASE("over the cap, earlier messages are cut first and the last user message kept whole") {
  const std::string early(20000, 'a');
  const std::string question = "what now? " + std::string(1000, 'q');
  ChatRequest request = Request("[" + UserMessage(early) +
                                R"(,{"role":"assistant","content":"noted"},)" +
                                UserMessage(question) + "]");
  request.system = std::string(5000, 's');
  std::string text = RecordedRequest(request, 4096, "");
  CHECK(text.size() <= 4096);
  Json recorded = Json::Parse(text);
  CHECK(recorded["truncated"].Bool());
  CHECK(recorded["original_bytes"].Int() > 26000);
  CHECK(recorded["messages"][2]["content"].Str() == question);
  CHECK(recorded["messages"][1]["content"].Str() == "noted");
  CHECK(EndsWithCutMark(recorded["messages"][0]["content"].Str()));
  CHECK(EndsWithCutMark(recorded["system"].Str()));
  CHECK(recorded["messages"][0]["content"].Str().compare(0, 100, early, 0, 100) == 0);
}

TEST_CASE("the cap holds for any size of input, cutting the last user message last") {
  for (size_t cap : {size_t{1024}, size_t{2048}, size_t{5000}, size_t{32768}}) {
    for (size_t n : {size_t{0}, size_t{100}, size_t{3000}, size_t{40000}}) {
      for (int messages : {1, 3, 400}) {
        std::string list = "[";
        for (int i = 0; i < messages; ++i) {
          if (i > 0) list += ",";
          // Quotes and line breaks make the JSON longer than the raw text.
          std::string text(1, 'm');
          text.append(std::to_string(i)).append(1, ' ').append(n, 'x').append("\\\"\\n");
          list += UserMessage(text);
        }
        list += "]";
        ChatRequest request = Request(list);
        std::string text = RecordedRequest(request, cap, "");
        INFO("cap " << cap << ", " << messages << " messages of " << n << " bytes");
        CHECK(text.size() <= cap);
        Json recorded = Json::Parse(text);
        size_t uncut = RecordedRequest(request, size_t{1} << 30, "").size();
        CHECK(recorded["truncated"].Bool() == (uncut > cap));
        if (uncut > cap) CHECK(recorded["original_bytes"].Int() == static_cast<int64_t>(uncut));
        if (recorded["truncated"].Bool() && recorded["messages"].Size() > 0) {
          // The last message is the one kept: it is there, and starts as sent.
          Json last = recorded["messages"][recorded["messages"].Size() - 1];
          std::string head(1, 'm');
          head.append(std::to_string(messages - 1)).append(1, ' ');
          CHECK(last["content"].Str().rfind(head, 0) == 0);
        }
        if (recorded["omitted_messages"].Int() > 0) {
          CHECK(recorded["omitted_messages"].Int() + static_cast<int64_t>(recorded["messages"].Size()) ==
                messages);
        }
      }
    }
  }
  ChatResponse response;
  response.text = std::string(100000, 'r');
  std::string reply = RecordedReply(response, 2048, "");
  CHECK(reply.size() <= 2048);
  CHECK(Json::Parse(reply)["truncated"].Bool());
  CHECK(Json::Parse(reply)["original_bytes"].Int() > 100000);
}

TEST_CASE("a cut never splits a UTF-8 sequence") {
  std::string text;
  for (int i = 0; i < 5000; ++i) text += "\xC3\xA9";  // é
  ChatRequest request = Request("[" + UserMessage(text) + "," + UserMessage("last") + "]");
  for (size_t cap = 1024; cap < 1100; ++cap) {
    std::string recorded = RecordedRequest(request, cap, "");
    CHECK(recorded.size() <= cap);
    CHECK(recorded.find("\xEF\xBF\xBD") == std::string::npos);  // no U+FFFD from a split
    CHECK(Json::Parse(recorded)["messages"][1]["content"].Str() == "last");
  }
}

}  // namespace keel
