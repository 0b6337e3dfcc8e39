#pragma once
// LuaStatePool: the ScriptStates the function nodes of one script run on.
//
// The first state is created by Create, which is how the script gets loaded:
// its run declares the workflows. Later states are created on demand when
// every existing one is checked out (a node suspended in keel.sleep keeps
// its state), each running the script again as a replaying state
// (declaration_replay.h: the chunk compiled by the first state, option
// checks skipped); a later run that declares different workflows or nodes
// fails the checkout.
//
// Thread-safety: Checkout and Return may be called from any thread at once.
// A checked-out state belongs to its caller until returned.

#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/clock.h"
#include "engine/mutex.h"
#include "engine/status.h"
#include "nodes/child_process.h"
#include "nodes/http_loop.h"
#include "nodes/llm_client.h"
#include "scripts/declarations.h"
#include "scripts/script_state.h"

namespace keel {

class LuaStatePool {
 public:
  // Runs `source` in a first state capped at `memory_limit` bytes and fills
  // *declarations with what it declared. `clock` (not null) serves keel.sleep
  // and must outlive the pool. On failure returns the script's error (kPermanent).
  static Result<std::shared_ptr<LuaStatePool>> Create(ScriptSource source, size_t memory_limit,
                                                      Clock* clock,
                                                      ScriptDeclarations* declarations);

  // A free state, or a new one when none is free. Fails (kPermanent) when a
  // new state cannot be created: the script failed or declared differently.
  Result<std::unique_ptr<ScriptState>> Checkout();
  // Takes a state back for reuse. Pass only states in a reusable condition.
  void Return(std::unique_ptr<ScriptState> state);

  Clock* clock() const { return clock_; }
  // What keel.llm and keel.http use. Set once, after Create and before any
  // node runs; read-only afterwards.
  void SetServices(std::shared_ptr<LlmClient> llm, std::shared_ptr<HttpLoop> http) {
    llm_ = std::move(llm);
    http_ = std::move(http);
  }
  const std::shared_ptr<LlmClient>& llm() const { return llm_; }
  const std::shared_ptr<HttpLoop>& http() const { return http_; }
  // What keel.exec runs programs on; its thread starts with the first program.
  ProcessLoop* processes() const { return processes_.get(); }
  size_t memory_limit() const { return memory_limit_; }
  const std::string& chunk_name() const { return source_.chunk_name; }
  // How many states were created so far, and how many are free now.
  size_t created();
  size_t free_count();

 private:
  LuaStatePool(ScriptSource source, size_t memory_limit, Clock* clock)
      : source_(std::move(source)),
        memory_limit_(memory_limit),
        clock_(clock),
        processes_(std::make_unique<ProcessLoop>(clock)) {}

  const ScriptSource source_;
  const size_t memory_limit_;
  Clock* const clock_;
  std::string layout_;  // set by Create; what every state must declare
  std::string chunk_;   // set by Create; the script compiled (DumpChunk), or ""
  std::shared_ptr<LlmClient> llm_;  // set by SetServices
  std::shared_ptr<HttpLoop> http_;
  const std::unique_ptr<ProcessLoop> processes_;

  Mutex mu_;
  std::vector<std::unique_ptr<ScriptState>> free_ GUARDED_BY(mu_);
  size_t created_ GUARDED_BY(mu_) = 0;
};

}  // namespace keel
