#include "cli/recorded_report.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "cli/recorded_script.h"

namespace keel::cli {

Result<std::unique_ptr<RecordedReport>> ReadRecordedReport(Store* store, const RunRecord& run) {
  auto nodes = store->GetNodes(run.id);
  if (!nodes.ok()) return nodes.status();
  auto out = std::make_unique<RecordedReport>();
  auto script = LoadRecordedScript(store, run);
  if (script.ok() && (*script)->Find(run.workflow) != nullptr) {
    out->script = *script;
    out->workflow = out->script->Find(run.workflow);
  } else {
    out->own.name = run.workflow;
    for (const NodeRecord& rec : *nodes) out->own.nodes.emplace_back().name = rec.node;
    out->workflow = &out->own;
  }
  std::unordered_map<std::string_view, const NodeRecord*> by_name;
  for (const NodeRecord& rec : *nodes) by_name[rec.node] = &rec;
  std::unordered_set<std::string_view> depended_on;
  for (const NodeSpec& node : out->workflow->nodes) {
    depended_on.insert(node.after.begin(), node.after.end());
  }

  RunReport& report = out->report;
  report.run_id = run.id;
  report.status = run.status;
  report.error = run.error;
  for (const NodeSpec& node : out->workflow->nodes) {
    auto it = by_name.find(node.name);
    NodeResult result{NodeStatus::kPending, nullptr, Status::Ok()};
    int attempts = 0;
    if (it != by_name.end()) {
      const NodeRecord& rec = *it->second;
      result.status = rec.status;
      if (rec.output_json) result.output = MakeJson(*rec.output_json);
      if (rec.error_kind != ErrorKind::kNone) {
        result.error = Status::Error(rec.error_kind, rec.error_message);
      }
      attempts = rec.attempts;
    }
    if (!depended_on.count(node.name) && result.output) {
      report.outputs.emplace_back(node.name, result.output);
    }
    report.outcome.results.push_back(std::move(result));
    report.outcome.attempts.push_back(attempts);
  }
  report.outcome.status = run.status;
  report.outcome.error = run.error;
  if (run.finished_at > 0) out->seconds = std::max(0.0, run.finished_at - run.created_at);
  return out;
}

}  // namespace keel::cli
