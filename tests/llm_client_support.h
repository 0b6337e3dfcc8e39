#pragma once
// What the LlmClient tests share: Capture, which keeps what one call's
// `done` received, and Ask, a request with one user message.

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>

#include "nodes/llm_client.h"

namespace keel::testing {

// What one call's `done` received. Written on the thread that runs `done`,
// read by the test thread; one mutex guards it.
class Capture {
 public:
  LlmDone Done() {
    return [this](Result<ChatResponse> result, LlmCallRecord record) {
      std::lock_guard<std::mutex> lock(mu_);
      ++calls_;
      result_.emplace(std::move(result));
      record_ = std::move(record);
      cv_.notify_all();
    };
  }
  bool done() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_ > 0;
  }
  // Waits (generously: no timing is asserted) for a call that runs on other threads.
  bool Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [this] { return calls_ > 0; });
  }
  int calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  const Result<ChatResponse>& result() {
    std::lock_guard<std::mutex> lock(mu_);
    REQUIRE(result_.has_value());
    return *result_;
  }
  const Status& status() { return result().status(); }
  LlmCallRecord record() {
    std::lock_guard<std::mutex> lock(mu_);
    return record_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  std::optional<Result<ChatResponse>> result_;
  LlmCallRecord record_;
};

inline ChatRequest Ask(const std::string& user_text) {
  ChatRequest request;
  std::string escaped;
  for (char c : user_text) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  request.messages_json = R"([{"role":"user","content":")" + escaped + "\"}]";
  return request;
}

}  // namespace keel::testing
