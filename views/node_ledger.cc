#include "views/node_ledger.h"

#include <fmt/format.h>

#include <ctime>

#include "engine/wait_node.h"
#include "views/event_fields.h"
#include "views/format.h"
#include "views/live_state.h"

namespace keel {
namespace {

// Builds the ledger one event at a time.
class LedgerBuilder {
 public:
  explicit LedgerBuilder(double now) : now_(now) {}

  void Add(const EventRecord& e) {
    const std::string& k = e.kind;
    int attempt = static_cast<int>(NumberField(e.data_json, "attempt").value_or(0));
    if (k == "node_started") {
      Open(attempt > 0 ? attempt : 1, e.ts);
    } else if (k == "attempt_started") {
      Open(attempt > 0 ? attempt : NextNumber(), e.ts);
    } else if (k == "attempt_failed") {
      AttemptEntry& a = Current(attempt);
      std::string kind = StringField(e.data_json, "kind");
      a.outcome = kind == "timeout" ? "timeout" : kind == "cancelled" ? "cancelled" : "failed";
      if (kind == "timeout") a.decided_by = "timeout";
      Close(&a, e.ts, kind, StringField(e.data_json, "message"));
    } else if (k == "circuit_rejected") {
      AttemptEntry& a = Current(0);
      a.outcome = "rejected";
      a.decided_by = "breaker";
      Close(&a, e.ts, "circuit_open",
            "breaker " + StringField(e.data_json, "key") + " open: rejected");
    } else if (k == "retry_scheduled") {
      double delay = NumberField(e.data_json, "delay").value_or(0);
      pending_attempt_ = attempt > 0 ? attempt : NextNumber();
      pending_start_ = e.ts + delay;
      if (AttemptEntry* a = Last()) {
        if (a->decided_by != "breaker") a->decided_by = "retry";
        a->next = pending_start_ > now_ ? fmt::format("retry at {} (in {})", UtcClock(pending_start_),
                                                      FormatSeconds(pending_start_ - now_))
                                        : "retried after " + FormatSeconds(delay);
      }
    } else if (k == "retry_budget_exhausted") {
      Decide("budget", "retry budget exhausted: no more retries");
    } else if (k == "total_timeout") {
      Decide("timeout", "total timeout of " +
                            FormatSeconds(NumberField(e.data_json, "seconds").value_or(0)) +
                            " passed: no time for another attempt");
    } else if (k == "fallback_started") {
      Decide("fallback", "fallback workflow " + StringField(e.data_json, "workflow") + " started");
    } else if (k == "fallback_finished") {
      Decide("fallback", "fallback workflow " + StringField(e.data_json, "workflow") +
                             " ran: " + StringField(e.data_json, "status"));
    } else if (k == "hedge_started") {
      if (open_ >= 0) {
        AttemptEntry& a = entries_[open_];
        if (a.decided_by.empty()) a.decided_by = "hedge";
        ++hedges_;
        a.next = fmt::format("{} hedged request{} sent", hedges_, hedges_ == 1 ? "" : "s");
      }
    } else if (k == "node_succeeded" || k == "node_failed" || k == "node_cancelled") {
      if (open_ < 0) return;
      AttemptEntry& a = entries_[open_];
      a.outcome = k == "node_succeeded" ? "succeeded" : k == "node_failed" ? "failed" : "cancelled";
      Close(&a, e.ts, StringField(e.data_json, "kind"), StringField(e.data_json, "message"));
    }
  }

  std::vector<AttemptEntry> Take() { return std::move(entries_); }

 private:
  int NextNumber() const { return entries_.empty() ? 1 : entries_.back().attempt + 1; }

  void Open(int attempt, double ts) {
    AttemptEntry a;
    a.attempt = attempt;
    a.started_at = ts;
    entries_.push_back(std::move(a));
    open_ = static_cast<int>(entries_.size()) - 1;
    pending_attempt_ = 0;
    hedges_ = 0;
  }

  // The open attempt; else the one a retry scheduled (started when its
  // delay ended: admitted attempts after a rejection record no start).
  AttemptEntry& Current(int attempt) {
    if (open_ < 0) {
      if (pending_attempt_ > 0) {
        Open(pending_attempt_, pending_start_);
      } else {
        Open(attempt > 0 ? attempt : NextNumber(), 0);
      }
    }
    AttemptEntry& a = entries_[open_];
    if (attempt > 0) a.attempt = attempt;
    return a;
  }

  void Close(AttemptEntry* a, double ts, const std::string& kind, const std::string& message) {
    a->finished_at = ts;
    a->error_kind = kind;
    a->message = message;
    open_ = -1;
  }

  AttemptEntry* Last() { return entries_.empty() ? nullptr : &entries_.back(); }

  void Decide(const char* who, const std::string& next) {
    if (AttemptEntry* a = Last()) {
      a->decided_by = who;
      a->next = next;
    }
  }

  double now_;
  std::vector<AttemptEntry> entries_;
  int open_ = -1;  // index of the attempt running; -1: none
  int pending_attempt_ = 0;
  double pending_start_ = 0;
  int hedges_ = 0;
};

std::string Outcome(NodeStatus status) {
  switch (status) {
    case NodeStatus::kSucceeded:
      return "succeeded";
    case NodeStatus::kCancelled:
      return "cancelled";
    case NodeStatus::kRunning:
    case NodeStatus::kWaiting:
    case NodeStatus::kPending:
      return "running";
    default:
      return "failed";
  }
}

std::string Join(const std::vector<std::string>& names) {
  std::string text;
  for (const std::string& name : names) text += (text.empty() ? "" : ", ") + name;
  return text;
}

// The last failed attempt's number and error kind before the newest retry.
std::string LastFailure(const std::vector<EventRecord>& events) {
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (it->kind != "attempt_failed") continue;
    return fmt::format("attempt {} failed: {}",
                       static_cast<int>(NumberField(it->data_json, "attempt").value_or(0)),
                       StringField(it->data_json, "kind"));
  }
  return "";
}

std::string BreakerKey(const std::vector<EventRecord>& events) {
  for (auto it = events.rbegin(); it != events.rend(); ++it) {
    if (it->kind == "circuit_rejected") return StringField(it->data_json, "key");
  }
  return "";
}

}  // namespace

std::string UtcClock(double wall) {
  std::time_t t = static_cast<std::time_t>(wall);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:02}:{:02}:{:02} UTC", tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::vector<AttemptEntry> BuildLedger(const std::vector<EventRecord>& events,
                                      const NodeRecord* record, double now) {
  LedgerBuilder builder(now);
  for (const EventRecord& e : events) builder.Add(e);
  std::vector<AttemptEntry> entries = builder.Take();
  if (entries.empty() && record != nullptr && record->started_at > 0) {
    // A record without events (copied by a fork): one entry from the record.
    AttemptEntry a;
    a.attempt = record->attempts > 0 ? record->attempts : 1;
    a.started_at = record->started_at;
    a.finished_at = record->finished_at;
    a.outcome = Outcome(record->status);
    if (record->error_kind != ErrorKind::kNone) a.error_kind = ErrorKindName(record->error_kind);
    a.message = record->error_message;
    entries.push_back(std::move(a));
  }
  return entries;
}

std::string ExplainNode(const std::string& status, const NodeRecord* record,
                        const std::vector<EventRecord>& events,
                        const std::vector<std::string>& unfinished_deps,
                        const std::string& run_label, double now) {
  const std::string message = record != nullptr ? record->error_message : "";
  if (status == "pending") {
    if (!unfinished_deps.empty()) return "waiting on " + Join(unfinished_deps);
    if (run_label == "running" || run_label == "queued") return "not started yet";
    return "not reached: the run is " + run_label;
  }
  if (status == "running") {
    LiveState live = NodeLiveState(events, now);
    if (live.state == "backing_off") {
      std::string failure = LastFailure(events);
      return "backing off until " + UtcClock(live.until) +
             (failure.empty() ? "" : " (" + failure + ")");
    }
    if (live.state == "breaker_open") {
      return "breaker " + BreakerKey(events) + " open until " + UtcClock(live.until);
    }
    if (live.state == "retrying") {
      std::string failure = LastFailure(events);
      return failure.empty() ? "retrying" : "retrying after " + failure;
    }
    return "";
  }
  if (status == "waiting") {
    WaitInfo info;
    if (record == nullptr || !record->output_json || !ParseWaitInfo(*record->output_json, &info)) {
      return "waiting";
    }
    if (info.signal.empty()) return "waiting for its timer until " + UtcClock(info.due);
    return "waiting for signal " + info.signal +
           (info.due > 0 ? " (gives up at " + UtcClock(info.due) + ")" : "");
  }
  if (status == "interrupted") return "its run was interrupted; resuming the run runs it again";
  if (status == "skipped") return message.empty() ? "skipped" : "skipped: " + message;
  if (status == "cancelled") {
    if (message.starts_with("dependency ")) return "cancelled because " + message;
    return message.empty() ? "cancelled" : "cancelled: " + message;
  }
  return "";
}

}  // namespace keel
