#pragma once
// The run's configuration beyond its params, as `keel run` records it with
// the run (RunRecord::config_json) and `keel resume` and `keel fork` reuse
// it: the `--provider NAME=URL` overrides, `--max-tokens`, `--max-cost` and
// `--max-inflight`. `--workers`, `--durability` and `--storage-timeout` say
// how this process runs, not what the run does, and are not recorded.
//
// Recorded as a JSON object with only the options given:
// {"providers": {"NAME": "URL", ...}, "max_tokens": N, "max_cost": X,
//  "max_inflight": N}. Free functions; safe from any thread.

#include <string>

#include "cli/llm_options.h"
#include "engine/status.h"

namespace keel::cli {

struct RunConfig {
  LlmArgs llm;           // providers as "NAME=URL", one per name, in name order
  int max_inflight = 0;  // 0: unlimited
};

// The configuration of `llm` and `max_inflight` from a command line.
RunConfig ConfigFromArgs(const LlmArgs& llm, int max_inflight);

// `config` as recorded.
std::string ConfigJson(const RunConfig& config);

// The recorded configuration `json`. A run recorded before configurations
// were has "{}": nothing. Fails (kPermanent) when `json` is not such an
// object, naming what is wrong.
Result<RunConfig> ParseConfigJson(const std::string& json);

// `recorded` with what a resume's or fork's command line gave replacing it:
// each --provider NAME replaces that provider's URL (others stay), and each
// of --max-tokens, --max-cost and --max-inflight given replaces its value.
RunConfig OverrideConfig(const RunConfig& recorded, const LlmArgs& llm, int max_inflight);

}  // namespace keel::cli
