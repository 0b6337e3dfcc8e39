#pragma once
// The store conformance suite's harness: one set of tests, written against
// Store&, that every store must pass unchanged. Each executable links one
// backend (backend_sqlite.cc, backend_postgres.cc) that makes a fresh,
// empty database per test and opens stores on it; two stores on one
// database stand for two processes.
//
// Test files open their test suite with KEEL_CONFORMANCE_SUITE, so every
// failure names the backend.
//
// Thread-safety: a StoreBackend belongs to the test that made it; the stores
// it opens are Stores (any thread). The helpers below are free functions.

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/clock.h"
#include "engine/store.h"
#include "tests/support/store_records.h"

#ifndef KEEL_STORE_BACKEND
#error "KEEL_STORE_BACKEND (the backend's name) must be defined"
#endif

#define KEEL_CONFORMANCE_SUITE TEST_SUITE_BEGIN(KEEL_STORE_BACKEND " store")

namespace keel::conformance {

// How a store is opened; what both stores take.
struct StoreOptions {
  Clock* clock = nullptr;     // stamps breakers' updated_at; null: the system clock
  double stall_timeout = 30;  // seconds queued writes may fail before the store gives up
};

// One fresh database of one kind of store.
class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  // "sqlite" or "postgres".
  virtual std::string name() const = 0;
  // A store on this backend's database. Fails the test when it cannot open.
  virtual std::unique_ptr<Store> Open(const StoreOptions& options) = 0;
  std::unique_ptr<Store> Open() { return Open(StoreOptions{}); }
  // Another store on the same database: another process, as far as the
  // stores can tell.
  std::unique_ptr<Store> OpenSecond(const StoreOptions& options = {}) { return Open(options); }
};

// A backend on a new, empty database named after `tag`; null (after a
// MESSAGE saying why) when this backend's server is not there, and the test
// should return at once.
std::unique_ptr<StoreBackend> NewBackend(const std::string& tag);

inline const auto kAlive = [](const Owner&, double) { return true; };
inline const auto kDead = [](const Owner&, double) { return false; };

// Sample records (tests/support/store_records.h).
using testing::MakeEvent;
using testing::MakeNode;
using testing::MakeRun;
using testing::QueuedRun;

inline Status StatusOf(const Status& status) { return status; }
template <typename T>
Status StatusOf(const Result<T>& result) {
  return result.status();
}

// Creates run `id` (MakeRun) and fails the test when it cannot.
inline void Create(Store& store, const std::string& id, double created_at = 1) {
  Status created = store.CreateRun(MakeRun(id, created_at));
  REQUIRE_MESSAGE(created.ok(), created.ToString());
}

// Flushes and fails the test when the store has given up.
inline void Flushed(Store& store) {
  Status flushed = store.Flush();
  REQUIRE_MESSAGE(flushed.ok(), flushed.ToString());
}

// The value of `result`, failing the test with its error otherwise.
template <typename T>
T Must(Result<T> result) {
  REQUIRE_MESSAGE(result.ok(), result.status().ToString());
  return std::move(result).value();
}

// Every run, newest first.
inline RunFilter AllRuns() {
  RunFilter filter;
  filter.limit = 0;
  return filter;
}

inline RunRecord RunOf(Store& store, const std::string& id) { return Must(store.GetRun(id)); }

inline std::vector<std::string> Names(const std::vector<NodeRecord>& nodes) {
  std::vector<std::string> names;
  for (const NodeRecord& n : nodes) names.push_back(n.node);
  return names;
}

inline std::vector<std::string> Kinds(const std::vector<EventRecord>& events) {
  std::vector<std::string> kinds;
  for (const EventRecord& e : events) kinds.push_back(e.kind);
  return kinds;
}

inline const NodeRecord* FindNode(const std::vector<NodeRecord>& nodes, const std::string& name) {
  for (const NodeRecord& n : nodes) {
    if (n.node == name) return &n;
  }
  return nullptr;
}

inline int CountKind(Store& store, const std::string& run_id, const std::string& kind) {
  auto events = Must(store.GetEvents(run_id));
  return static_cast<int>(std::count_if(events.begin(), events.end(),
                                        [&](const EventRecord& e) { return e.kind == kind; }));
}

inline bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace keel::conformance

// REQUIRE / CHECK that a Status or Result is ok, printing its error if not.
#define REQUIRE_OK(expr)                                              \
  do {                                                                \
    const ::keel::Status status_ = ::keel::conformance::StatusOf(expr); \
    REQUIRE_MESSAGE(status_.ok(), #expr ": " << status_.ToString());    \
  } while (0)
#define CHECK_OK(expr)                                                \
  do {                                                                \
    const ::keel::Status status_ = ::keel::conformance::StatusOf(expr); \
    CHECK_MESSAGE(status_.ok(), #expr ": " << status_.ToString());      \
  } while (0)

// Opens a fresh database for the current test, or skips it (returns) when
// the backend's server is missing.
#define KEEL_FRESH_BACKEND(var)                                 \
  auto var = ::keel::conformance::NewBackend("conformance");    \
  if (!var) return
