#pragma once
// Run parameters from the command line: `-p key=value` overrides applied to
// a workflow's defaults. Free functions; safe from any thread.

#include <string>
#include <vector>

#include "engine/json_text.h"
#include "engine/status.h"

namespace keel::cli {

// Returns `defaults` (a JSON object) with every `key=value` of `overrides`
// applied in order. When the default for `key` is a string the value stays a
// string; otherwise it is parsed as JSON if it parses (5, true, [1,2],
// {"a":1}, "quoted") and taken as a string if not. Fails with kPermanent,
// naming the argument, when one has no '=', an empty key, a key or value
// that is not valid UTF-8 (naming the key), or a key the defaults do not
// declare (with a did-you-mean). With null `defaults` (the syntax check
// before a script loads) every key is accepted and added.
Result<JsonText> ApplyParamOverrides(const JsonText& defaults,
                                     const std::vector<std::string>& overrides);

}  // namespace keel::cli
