#include "views/run_list.h"

#include "views/format.h"
#include "views/llm_usage.h"
#include "views/run_status.h"

namespace keel {

const char* const kRunStatusNames =
    "running, interrupted, waiting, succeeded, failed, degraded or cancelled";

Result<std::vector<LabelledRun>> ListLabelledRuns(Store& store, const RunListQuery& query,
                                                  double now) {
  RunFilter filter;
  filter.limit = query.limit;
  filter.workflow = query.workflow;
  filter.before = query.before;
  if (!query.status.empty()) {
    RunStatus status;
    if (!ParseRunStatus(query.status, &status)) {
      return Status::Error(ErrorKind::kPermanent,
                           "'" + query.status + "': expected " + kRunStatusNames);
    }
    // A run shown interrupted may be recorded so, or recorded running with
    // its process gone; one shown running is recorded running. Tell them
    // apart by label below.
    if (status != RunStatus::kInterrupted) filter.status = status;
    if (status == RunStatus::kRunning || status == RunStatus::kInterrupted) filter.limit = 0;
  }
  auto listed = store.ListRuns(filter);
  if (!listed.ok()) return listed.status();
  std::vector<LabelledRun> rows;
  for (RunListing& listing : *listed) {
    std::string label = RunStatusLabel(listing.run, now);
    if (!query.status.empty() && label != query.status) continue;
    if (query.limit > 0 && rows.size() >= static_cast<size_t>(query.limit)) break;
    rows.push_back({std::move(listing), std::move(label)});
  }
  return rows;
}

void WriteRunListJson(JsonOut* out, const std::vector<LabelledRun>& rows, double now) {
  out->BeginArray();
  for (const auto& [listing, label] : rows) {
    const RunRecord& run = listing.run;
    out->BeginObject();
    out->Key("run_id").String(run.id);
    out->Key("workflow").String(run.workflow);
    out->Key("status").String(label);
    out->Key("started_at").String(FormatIsoUtc(run.created_at));
    out->Key("duration_s").Seconds(RunSeconds(run, label, now));
    out->Key("active_s").Seconds(ActiveSeconds(run, label, now));
    out->Key("nodes_done").Int(listing.nodes_done);
    out->Key("nodes_total").Int(run.node_count);
    out->Key("error").StringOrNull(run.error);
    out->Key("usage");
    WriteUsageJson(out, listing.usage);
    out->EndObject();
  }
  out->EndArray();
}

}  // namespace keel
