#include "views/run_list.h"

#include <algorithm>

#include "views/format.h"
#include "views/llm_usage.h"
#include "views/run_status.h"

namespace keel {

const char* const kRunStatusNames =
    "queued, running, interrupted, waiting, succeeded, failed, degraded or cancelled";

namespace {

// The runs of `query` without its state, as the store lists them.
Result<std::vector<LabelledRun>> ListByStatus(Store& store, const RunListQuery& query,
                                              double now);

// The statuses a run in live state `state` can be recorded with.
std::vector<RunStatus> StatusesOf(const std::string& state) {
  if (state == "queued") return {RunStatus::kQueued};
  // Listing "interrupted" finds runs recorded running with their process gone too.
  if (state == "interrupted") return {RunStatus::kInterrupted};
  // A run that holds its waits (keel serve) is recorded running.
  if (state == "waiting_signal" || state == "waiting_timer") {
    return {RunStatus::kWaiting, RunStatus::kRunning};
  }
  return {RunStatus::kRunning};
}

}  // namespace

Result<std::vector<LabelledRun>> ListLabelledRuns(Store& store, const RunListQuery& query,
                                                  double now) {
  if (query.state.empty()) return ListByStatus(store, query, now);
  RunStatus wanted;
  if (!query.status.empty() && !ParseRunStatus(query.status, &wanted)) {
    return Status::Error(ErrorKind::kPermanent,
                         "'" + query.status + "': expected " + kRunStatusNames);
  }
  if (!IsLiveStateName(query.state)) {
    return Status::Error(ErrorKind::kPermanent,
                         "'" + query.state + "': expected " + kLiveStateNames);
  }
  // Every run of each status the state can have (few: they are the active
  // ones), newest first, then those in the state.
  std::vector<LabelledRun> all;
  for (RunStatus status : StatusesOf(query.state)) {
    if (!query.status.empty() && query.status != RunStatusName(status)) continue;
    RunListQuery one = query;
    one.state.clear();
    one.limit = 0;
    one.status = RunStatusName(status);
    auto rows = ListByStatus(store, one, now);
    if (!rows.ok()) return rows.status();
    for (LabelledRun& row : *rows) {
      if (row.live.state == query.state) all.push_back(std::move(row));
    }
  }
  std::stable_sort(all.begin(), all.end(), [](const LabelledRun& a, const LabelledRun& b) {
    return a.listing.run.created_at > b.listing.run.created_at;
  });
  // The same run can come from two statuses' listings only if it changed
  // between them; keep its first.
  std::vector<LabelledRun> rows;
  for (LabelledRun& row : all) {
    bool seen = false;
    for (const LabelledRun& kept : rows) seen = seen || kept.listing.run.id == row.listing.run.id;
    if (seen) continue;
    if (query.limit > 0 && rows.size() >= static_cast<size_t>(query.limit)) break;
    rows.push_back(std::move(row));
  }
  return rows;
}

namespace {

Result<std::vector<LabelledRun>> ListByStatus(Store& store, const RunListQuery& query,
                                              double now) {
  RunFilter filter;
  filter.limit = query.limit;
  filter.workflow = query.workflow;
  filter.before = query.before;
  filter.since = query.since;
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
    auto live = ReadLiveState(store, listing.run, label, now);
    if (!live.ok()) return live.status();
    rows.push_back({std::move(listing), std::move(label), std::move(*live)});
  }
  return rows;
}

}  // namespace

void WriteRunListJson(JsonOut* out, const std::vector<LabelledRun>& rows, double now) {
  out->BeginArray();
  for (const auto& [listing, label, live] : rows) {
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
    out->Key("state").StringOrNull(live.state);
    if (live.state == "waiting_signal" && !live.waiting_for.empty()) {
      out->Key("waiting_for").String(live.waiting_for);
    }
    // Until when a backoff, an open breaker or a timer lasts.
    if (live.until > 0) out->Key("state_until").TimeOrNull(live.until);
    out->Key("usage");
    WriteUsageJson(out, listing.usage);
    out->EndObject();
  }
  out->EndArray();
}

}  // namespace keel
