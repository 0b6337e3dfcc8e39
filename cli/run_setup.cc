#include "cli/run_setup.h"

#include "engine/rerun.h"

namespace keel::cli {

Result<RunConfig> RecordedConfig(const RunRecord& run, const LlmArgs& llm, int max_inflight) {
  auto recorded = ParseConfigJson(run.config_json);
  if (!recorded.ok()) {
    return Status::Error(ErrorKind::kPermanent,
                         "run " + run.id + ": " + recorded.status().message());
  }
  return OverrideConfig(*recorded, llm, max_inflight);
}

Result<std::unordered_set<std::string>> RerunSet(const WorkflowSpec& workflow,
                                                 const std::string& from,
                                                 const std::string& run_id) {
  std::unordered_set<std::string> nodes;
  if (from.empty()) return nodes;
  auto list = NodesFrom(workflow, from);
  if (!list.ok()) {
    return Status::Error(ErrorKind::kPermanent,
                         "--from " + from + ": " + list.status().message() + " of run " + run_id);
  }
  nodes.insert(list->begin(), list->end());
  return nodes;
}

std::string ResumeKeepsParams(const std::string& run_id) {
  return "keel resume keeps the run's params, so that the outputs it keeps match them; to run "
         "with other params, start a new run from this one: keel fork " +
         run_id + " -p key=value [--from NODE]";
}

}  // namespace keel::cli
