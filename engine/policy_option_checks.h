#pragma once
// The checks that the policy option parsers share: node_policy.cc (timeout,
// retry, fallback, join, memory, max_concurrency) and circuit_options.cc
// (circuit). Each names the option in its message ("retry.base: expected a
// number of seconds >= 0"). Not for other callers. Free functions without
// state; any thread.

#include <rapidjson/document.h>

#include <cmath>
#include <initializer_list>
#include <string>

#include "engine/node_policy.h"
#include "engine/status.h"

namespace keel::policy_options {

// kPermanent "OPTION: WHAT".
inline Status Bad(const std::string& option, const std::string& what) {
  return Status::Error(ErrorKind::kPermanent, option + ": " + what);
}

// A number of seconds, > 0 (or >= 0 with `allow_zero`), into *out.
inline Status Seconds(const rapidjson::Value& v, const std::string& option, double* out,
                      bool allow_zero = false) {
  if (!v.IsNumber() || !std::isfinite(v.GetDouble()) || v.GetDouble() < 0 ||
      (!allow_zero && v.GetDouble() == 0)) {
    return Bad(option, allow_zero ? "expected a number of seconds >= 0"
                                  : "expected a number of seconds > 0");
  }
  *out = v.GetDouble();
  return Status::Ok();
}

// A whole number >= `min`, into *out.
inline Status Count(const rapidjson::Value& v, const std::string& option, int min, int* out) {
  if (!v.IsInt() || v.GetInt() < min) {
    return Bad(option, "expected a whole number >= " + std::to_string(min));
  }
  *out = v.GetInt();
  return Status::Ok();
}

// A number in (0, 1], into *out.
inline Status Fraction(const rapidjson::Value& v, const std::string& option, double* out) {
  if (!v.IsNumber() || !(v.GetDouble() > 0 && v.GetDouble() <= 1)) {
    return Bad(option, "expected a number in (0, 1]");
  }
  *out = v.GetDouble();
  return Status::Ok();
}

// Key `key` of table `option` is none of `known`.
inline Status UnknownKey(const std::string& option, const std::string& key,
                         std::initializer_list<const char*> known) {
  std::string list;
  for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
  return Bad(option + "." + key, "unknown option (expected one of " + list + ")");
}

// The members of table `v` (option `option`), each handed to `member`,
// which returns false for a key it does not know.
template <typename Member>
Status ParseTable(const rapidjson::Value& v, const std::string& option,
                  std::initializer_list<const char*> known, Member member) {
  if (!v.IsObject()) return Bad(option, "expected a table");
  for (auto& m : v.GetObject()) {
    std::string key = m.name.GetString();
    Status s;
    if (!member(key, m.value, option + "." + key, &s)) return UnknownKey(option, key, known);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// The `circuit` option (circuit_options.cc): true or false, a breaker key,
// or a table of the breaker's settings, into p->circuit and p->has_circuit.
Status ParseCircuit(const rapidjson::Value& v, NodePolicy* p);

}  // namespace keel::policy_options
