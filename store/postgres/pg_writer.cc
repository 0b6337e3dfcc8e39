// PgWriter's group commit: a batch of queued writes as one transaction in
// two round trips and a handful of statements whatever its size (the rows
// of each table go as arrays through unnest), fenced by the epochs of its
// runs (see pg_writer.h).

#include "store/postgres/pg_writer.h"

#include <cstdio>
#include <map>
#include <optional>
#include <utility>

#include "store/postgres/pg_row_arrays.h"
#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

constexpr char kLockRuns[] =
    "SELECT id, epoch, last_seq FROM runs WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE";
constexpr char kFinishRun[] =
    "UPDATE runs SET status = $2, error = $3, "
    // An interrupted or waiting run has not finished: it keeps no finish
    // time, so gc leaves it and its duration stays unknown.
    "finished_at = CASE WHEN $2 IN ('interrupted', 'waiting') THEN 0 "
    "ELSE $4::double precision END, updated_at = $4::double precision WHERE id = $1";
constexpr char kHeartbeat[] = "UPDATE runs SET heartbeat = $2 WHERE id = $1";
constexpr char kSetLastSeq[] = "UPDATE runs SET last_seq = $2 WHERE id = $1";

std::string TextArray(const std::map<std::string, int64_t>& values) {
  std::vector<std::string> keys;
  for (const auto& [value, n] : values) keys.push_back(value);
  return ArrayLiteral(keys);
}

const std::string& RunOf(const QueuedRecord& record) {
  if (const auto* node = std::get_if<NodeRecord>(&record)) return node->run_id;
  if (const auto* finish = std::get_if<QueuedNodeFinish>(&record)) return finish->node.run_id;
  if (const auto* event = std::get_if<EventRecord>(&record)) return event->run_id;
  if (const auto* finish = std::get_if<QueuedRunFinish>(&record)) return finish->run_id;
  return std::get<QueuedHeartbeat>(record).run_id;
}

}  // namespace

int64_t PgWriter::HeldEpoch(const std::string& run_id) const {
  auto it = held_.find(run_id);
  return it == held_.end() ? 0 : it->second.epoch;
}

std::string PgWriter::StallDetail(const Status& failure, double seconds) {
  char detail[64];
  std::snprintf(detail, sizeof detail, " (writes failing for %.1fs)", seconds);
  return detail;
}

Result<bool> PgWriter::Resolve() {
  if (!conn_->Healthy()) {
    return Status::Error(ErrorKind::kTransient,
                         conn_->name() + ": connection lost; reconnecting to learn whether the "
                                         "last batch committed");
  }
  auto state = conn_->Exec("SELECT txid_status($1)", {Num(*unresolved_xid_)},
                           "looking up the outcome of an unanswered commit");
  if (!state.ok()) return state.status();
  const std::string outcome = state->str(0, 0);
  if (outcome == "in progress") {
    return Status::Error(ErrorKind::kTransient,
                         conn_->name() + ": the last batch's commit is still in progress");
  }
  unresolved_xid_.reset();
  return outcome == "committed";
}

Status PgWriter::Commit(const std::vector<const QueuedRecord*>& records) {
  if (unresolved_xid_) {
    auto committed = Resolve();
    if (!committed.ok()) return committed.status();
    if (*committed) return Status::Ok();  // the same batch went in before its answer was lost
  }
  if (!conn_->Healthy()) {
    return Status::Error(ErrorKind::kTransient, conn_->name() + ": connection lost; reconnecting");
  }
  // The runs written, and how many events each gets.
  std::map<std::string, int64_t> runs;
  for (const QueuedRecord* record : records) {
    int64_t& n = runs[RunOf(*record)];
    if (std::holds_alternative<EventRecord>(*record) ||
        std::holds_alternative<QueuedNodeFinish>(*record)) {
      ++n;
    }
  }
  auto abort = [&](Status failure) {
    if (conn_->InTransaction()) (void)conn_->ExecScript("ROLLBACK", "rolling back a batch");
    return failure;
  };

  // Round trip 1: lock, fence, number.
  std::vector<Statement> first;
  first.push_back({"BEGIN", {}});
  first.push_back({kLockRuns, {TextArray(runs)}});
  first.push_back({"SELECT txid_current()", {}});
  auto locked = conn_->Pipeline(first, "locking the runs of a batch");
  if (!locked.ok()) return abort(locked.status());
  const Rows& rows = (*locked)[locked->size() - 2];
  std::map<std::string, int64_t> next_seq;
  std::map<std::string, int64_t> epochs;
  for (int i = 0; i < rows.size(); ++i) {
    epochs[rows.str(i, 0)] = rows.int64(i, 1);
    next_seq[rows.str(i, 0)] = rows.int64(i, 2) + 1;
  }
  for (const auto& [run_id, n] : runs) {
    auto held = held_.find(run_id);
    auto epoch = epochs.find(run_id);
    if (held != held_.end() && (epoch == epochs.end() || epoch->second != held->second.epoch)) {
      fenced_ = true;
      return abort(Status::Error(
          ErrorKind::kPermanent,
          epoch == epochs.end()
              ? "run " + run_id + " is gone from " + conn_->name() + " (deleted by another process)"
              : "run " + run_id + " was taken over by another process (epoch " +
                    std::to_string(epoch->second) + ", this process holds " +
                    std::to_string(held->second.epoch) + ")"));
    }
    if (n > 0 && epoch == epochs.end()) {
      return abort(Status::Error(ErrorKind::kPermanent, "cannot record events of run " + run_id +
                                                            ": no such run in " + conn_->name()));
    }
  }
  const int64_t xid = (*locked).back().int64(0, 0);

  // Round trip 2: the node records, the events, the run updates (each
  // table's rows in queue order), then COMMIT.
  std::vector<Statement> writes;
  EventRows events_in;
  NodeRows nodes_in;
  std::vector<Statement> run_updates;
  auto event = [&](const EventRecord& e) {
    EventRecord numbered = e;
    numbered.seq = next_seq[e.run_id]++;
    events_in.Add(numbered);
  };
  auto node = [&](const NodeRecord& n) {
    auto held = held_.find(n.run_id);
    nodes_in.Add(n, held == held_.end() ? std::nullopt
                                        : std::optional<int64_t>(held->second.script_version));
  };
  for (const QueuedRecord* record : records) {
    if (const auto* n = std::get_if<NodeRecord>(record)) {
      node(*n);
    } else if (const auto* finish = std::get_if<QueuedNodeFinish>(record)) {
      node(finish->node);
      event(finish->event);
    } else if (const auto* e = std::get_if<EventRecord>(record)) {
      event(*e);
    } else if (const auto* run = std::get_if<QueuedRunFinish>(record)) {
      run_updates.push_back({kFinishRun,
                             {run->run_id, std::string(RunStatusName(run->status)), run->error,
                              Num(run->finished_at)}});
    } else {
      const auto& beat = std::get<QueuedHeartbeat>(*record);
      run_updates.push_back({kHeartbeat, {beat.run_id, Num(beat.now)}});
    }
  }
  if (!nodes_in.empty()) writes.push_back(nodes_in.ToStatement());
  if (!events_in.empty()) {
    // Run rows first, then the event-cursor lock, held only from here to
    // COMMIT (the same pipeline), as every writer of events takes them.
    writes.push_back({"SELECT pg_advisory_xact_lock($1)", {Num(kEventCursorLock)}});
    writes.push_back(events_in.ToStatement());
  }
  for (Statement& update : run_updates) writes.push_back(std::move(update));
  for (const auto& [run_id, n] : runs) {
    if (n > 0) writes.push_back({kSetLastSeq, {run_id, Num(next_seq[run_id] - 1)}});
  }
  writes.push_back({"COMMIT", {}});
  unresolved_xid_ = xid;
  auto written = conn_->Pipeline(writes, "committing " + std::to_string(records.size()) +
                                             " queued writes");
  if (written.ok()) {
    unresolved_xid_.reset();
    return Status::Ok();
  }
  // Still in the transaction on the same session: the server refused a
  // write, so nothing committed. Otherwise the outcome is unknown until
  // Resolve() can ask.
  if (conn_->InTransaction()) {
    unresolved_xid_.reset();
    return abort(written.status());
  }
  return written.status();
}

}  // namespace keel::pg
