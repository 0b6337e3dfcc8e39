#pragma once
// What the LlmClient tests share: Capture, which keeps what one call's
// `done` received, and Ask, a request with one user message.

#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>

#include "engine/mutex.h"
#include "nodes/llm_client.h"

namespace keel::testing {

// What one call's `done` received. Written on the thread that runs `done`,
// read by the test thread; one mutex guards it.
class Capture {
 public:
  LlmDone Done() {
    return [this](Result<ChatResponse> result, LlmCallRecord record) {
      MutexLock lock(&mu_);
      ++calls_;
      result_.emplace(std::move(result));
      record_ = std::move(record);
      cv_.SignalAll();
    };
  }
  bool done() {
    MutexLock lock(&mu_);
    return calls_ > 0;
  }
  // Waits (generously: no timing is asserted) for a call that runs on other threads.
  bool Wait() {
    MutexLock lock(&mu_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (calls_ == 0 && cv_.WaitUntil(&mu_, deadline)) {
    }
    return calls_ > 0;
  }
  int calls() {
    MutexLock lock(&mu_);
    return calls_;
  }
  const Result<ChatResponse>& result() {
    MutexLock lock(&mu_);
    REQUIRE(result_.has_value());
    return *result_;
  }
  const Status& status() { return result().status(); }
  LlmCallRecord record() {
    MutexLock lock(&mu_);
    return record_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  int calls_ GUARDED_BY(mu_) = 0;
  std::optional<Result<ChatResponse>> result_ GUARDED_BY(mu_);
  LlmCallRecord record_ GUARDED_BY(mu_);
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
