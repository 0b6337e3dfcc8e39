#pragma once
// Status and Result: how every module border reports failure.
//
// A Status carries one error kind of DESIGN.md section 4 and a message. It is a
// value type; copies are independent and safe to move between threads.

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace keel {

// The kinds of failure a node attempt can end with. kNone means success.
enum class ErrorKind {
  kNone,
  kTimeout,      // a deadline passed
  kTransient,    // 5xx, connection reset, DNS: worth retrying
  kRateLimited,  // 429; Status::retry_after() says how long to wait
  kPermanent,    // other 4xx, bad config, invalid output: retrying will not help
  kCircuitOpen,  // the breaker refused the call
  kCancelled,    // the run or a join gave up on this work
  kError,        // a Lua error() or another unclassified failure
};

// "timeout", "transient", ... ; "ok" for kNone.
std::string_view ErrorKindName(ErrorKind kind);
// Parses a name from ErrorKindName. Returns false (and leaves *kind alone) on an unknown name.
bool ParseErrorKind(std::string_view name, ErrorKind* kind);

class [[nodiscard]] Status {
 public:
  Status() = default;  // ok
  static Status Ok() { return Status(); }
  static Status Error(ErrorKind kind, std::string message, double retry_after = -1) {
    Status s;
    s.kind_ = kind;
    s.message_ = std::move(message);
    s.retry_after_ = retry_after;
    return s;
  }

  bool ok() const { return kind_ == ErrorKind::kNone; }
  ErrorKind kind() const { return kind_; }
  const std::string& message() const { return message_; }
  // Seconds the caller asked us to wait before retrying; negative when not given.
  double retry_after() const { return retry_after_; }
  // "kind: message", or "ok".
  std::string ToString() const;

 private:
  ErrorKind kind_ = ErrorKind::kNone;
  std::string message_;
  double retry_after_ = -1;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT: must not be ok

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() { return *value_; }
  const T& operator*() const { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace keel
