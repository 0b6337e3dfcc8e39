// `keel breakers`: the circuit breakers shared through the database, their
// health and statistics, resetting them, and an operator's states
// (--force-open, --disable, --close).

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/db_postgres.h"
#include "cli/exit_codes.h"
#include "cli/table.h"
#include "engine/clock.h"
#include "views/breaker_json.h"
#include "views/breaker_summary.h"
#include "views/format.h"
#include "views/json_out.h"
#include "views/run_actions.h"

namespace keel::cli {
namespace {

// "3 failed" or "2 ok": the outcomes in a row; "-" before any.
std::string InARow(const BreakerSnapshot& s) {
  if (s.consecutive_failures > 0) return fmt::format("{} failed", s.consecutive_failures);
  if (s.consecutive_successes > 0) return fmt::format("{} ok", s.consecutive_successes);
  return "-";
}

// What comes next: the time until an open breaker's probe ("now" once its
// cooldown has passed), "probing" while half-open, the share of calls a
// recovering breaker admits; "-" otherwise.
std::string Next(const BreakerRow& row, double now) {
  const BreakerSnapshot& s = row.snapshot;
  if (std::optional<double> in = HalfOpenIn(row, now)) {
    return *in > 0 ? FormatDuration(*in) : "now";
  }
  if (s.state == BreakerState::kHalfOpen) return "probing";
  if (s.state == BreakerState::kRecovering) {
    return fmt::format("ramp {}%", std::round(RampShare(s, s.config, now) * 1000) / 10);
  }
  return "-";
}

void PrintTable(const std::vector<BreakerRow>& rows, double now) {
  Table table({"KEY", "STATE", "HEALTH", "CALLS", "FAILED", "SLOW", "TIMEOUTS", "REJECTED",
               "IN A ROW", "NEXT"});
  for (const BreakerRow& row : rows) {
    const BreakerSnapshot& s = row.snapshot;
    table.AddRow({row.key, std::string(BreakerStateName(s.state)),
                  fmt::format("{}%", RoundedHealth(s)), std::to_string(s.calls),
                  std::to_string(s.failed), std::to_string(s.slow), std::to_string(s.timeouts),
                  std::to_string(s.rejected), InARow(s), Next(row, now)});
  }
  table.Print(stdout);
  std::printf("%s\n", BreakerSummaryLine(SummarizeBreakers(rows)).c_str());
}

// `keel breakers --reset KEY` or `--all`.
int Reset(Store* store, const BreakersArgs& args, const std::string& db_path) {
  auto reset = ResetBreakerKeys(*store, args.all ? "" : args.reset);
  if (!reset.ok()) {
    if (IsUnknownBreaker(reset.status())) {
      return UsageError(fmt::format("--reset: {} in {} (see keel breakers)",
                                    reset.status().message(), DbName(db_path)));
    }
    // The store's message names the database.
    PrintError(fmt::format("--{}: cannot reset breakers: {}", args.all ? "all" : "reset",
                           reset.status().message()));
    return kExitFailed;
  }
  std::printf("reset %lld breaker%s\n", static_cast<long long>(*reset), *reset == 1 ? "" : "s");
  return kExitSucceeded;
}

// An operator's order: the option that gave it, its key and the state asked for.
struct Order {
  const char* option = nullptr;  // "--force-open", "--disable", "--close"
  std::string key;
  BreakerState target = BreakerState::kClosed;
};

// The order the arguments give; nullopt when none (CLI11 allows one at most).
std::optional<Order> OrderOf(const BreakersArgs& args) {
  if (!args.force_open.empty()) {
    return Order{"--force-open", args.force_open, BreakerState::kForcedOpen};
  }
  if (!args.disable.empty()) return Order{"--disable", args.disable, BreakerState::kDisabled};
  if (!args.close.empty()) return Order{"--close", args.close, BreakerState::kClosed};
  return std::nullopt;
}

// A state in words: "forced open", "half open".
std::string StateWords(BreakerState state) {
  std::string words(BreakerStateName(state));
  for (char& c : words) {
    if (c == '_') c = ' ';
  }
  return words;
}

// `keel breakers --force-open KEY`, `--disable KEY` or `--close KEY`.
int Operate(Store* store, const Order& order, const std::string& db_path) {
  auto done = OperateBreaker(*store, order.key, order.target, SystemClock()->WallNow());
  if (!done.ok()) {
    if (IsUnknownBreaker(done.status())) {
      return UsageError(fmt::format("{}: {} in {} (see keel breakers)", order.option,
                                    done.status().message(), DbName(db_path)));
    }
    // The store's message names the database.
    PrintError(fmt::format("{}: cannot change breaker '{}': {}", order.option, order.key,
                           done.status().message()));
    return kExitFailed;
  }
  std::string state = StateWords(order.target);
  if (done->transition == BreakerTransition::kNone) {
    std::printf("breaker %s was already %s\n", order.key.c_str(), state.c_str());
  } else {
    std::printf("breaker %s %s (was %s)\n", order.key.c_str(), state.c_str(),
                StateWords(done->was).c_str());
  }
  return kExitSucceeded;
}

void PrintJson(const std::vector<BreakerRow>& rows, bool summary, double now) {
  JsonOut out;
  if (summary) {
    WriteBreakersWithSummaryJson(&out, rows, now);
  } else {
    WriteBreakersJson(&out, rows, now);
  }
  out.Print(stdout);
}

}  // namespace

int BreakersCommand(const BreakersArgs& args) {
  std::string db_path = ResolveDbPath(args.db);
  std::optional<Order> order = OrderOf(args);
  bool resets = args.all || !args.reset.empty();
  auto store = OpenDbIfExists(db_path, resets || order ? DbAccess::kWrite : DbAccess::kRead);
  if (!store.ok()) return UsageError(store.status().message());
  double now = SystemClock()->WallNow();
  if (*store == nullptr) {
    const std::string& key = order ? order->key : args.reset;
    if (!key.empty()) {
      return UsageError(fmt::format("{}: no breaker '{}': no database at {}",
                                    order ? order->option : "--reset", key, DbName(db_path)));
    }
    if (args.all) std::printf("reset 0 breakers\n");
    if (args.json) PrintJson({}, args.summary, now);
    std::fprintf(stderr, "no breakers (no database at %s)\n", DbName(db_path).c_str());
    return kExitSucceeded;
  }
  if (resets) return Reset(store->get(), args, db_path);
  if (order) return Operate(store->get(), *order, db_path);

  auto rows = (*store)->ListBreakers();
  if (!rows.ok()) return UsageError(rows.status().message());
  if (args.json) {
    PrintJson(*rows, args.summary, now);
  } else if (rows->empty()) {
    std::fprintf(stderr, "no breakers in %s\n", DbName(db_path).c_str());
  } else {
    PrintTable(*rows, now);
  }
  return kExitSucceeded;
}

}  // namespace keel::cli
