// `keel breakers`: the circuit breakers shared through the database, their
// health, and resetting them.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/exit_codes.h"
#include "cli/table.h"
#include "engine/clock.h"
#include "views/format.h"
#include "views/json_out.h"

namespace keel::cli {
namespace {

// Seconds until open breaker `row` lets a probe through (0 once its
// cooldown has passed); nullopt when it is not open.
std::optional<double> HalfOpenIn(const BreakerRow& row, double now) {
  const BreakerSnapshot& s = row.snapshot;
  if (s.state != BreakerState::kOpen) return std::nullopt;
  return std::max(0.0, s.opened_at + s.cooldown - now);
}

// Health rounded to a tenth of a percent: 100, 66.7, 0.
double RoundedHealth(const BreakerSnapshot& s) { return std::round(HealthPercent(s) * 10) / 10; }

void PrintJson(const std::vector<BreakerRow>& rows, double now) {
  JsonOut out;
  out.BeginArray();
  for (const BreakerRow& row : rows) {
    const BreakerSnapshot& s = row.snapshot;
    out.BeginObject();
    out.Key("key").String(row.key);
    out.Key("state").String(BreakerStateName(s.state));
    out.Key("failures").Int(s.consecutive_failures);
    out.Key("calls").Int(s.calls);
    out.Key("failed").Int(s.failed);
    out.Key("health_percent").Raw(fmt::format("{}", RoundedHealth(s)));
    out.Key("half_open_in_s").Seconds(HalfOpenIn(row, now));
    out.Key("opened_at").TimeOrNull(s.opened_at);
    out.Key("cooldown_s").Seconds(s.cooldown);
    out.Key("updated_at").TimeOrNull(row.updated_at);
    // Half-open calls running now, each holding a slot its process renews.
    out.Key("probes");
    out.BeginArray();
    for (const ProbeLease& p : s.probes) {
      out.BeginObject();
      out.Key("pid").Int(p.owner.pid);
      out.Key("host").String(p.owner.host);
      out.Key("started_at").TimeOrNull(p.started_at);
      out.Key("renewed_at").TimeOrNull(p.renewed_at);
      out.EndObject();
    }
    out.EndArray();
    out.EndObject();
  }
  out.EndArray();
  out.Print(stdout);
}

void PrintTable(const std::vector<BreakerRow>& rows, double now) {
  Table table({"KEY", "STATE", "FAILURES", "CALLS", "FAILED", "HEALTH", "HALF-OPEN IN"});
  for (const BreakerRow& row : rows) {
    const BreakerSnapshot& s = row.snapshot;
    std::optional<double> half_open_in = HalfOpenIn(row, now);
    std::string in = "-";
    if (half_open_in) in = *half_open_in > 0 ? FormatDuration(*half_open_in) : "now";
    table.AddRow({row.key, std::string(BreakerStateName(s.state)),
                  std::to_string(s.consecutive_failures), std::to_string(s.calls),
                  std::to_string(s.failed), fmt::format("{}%", RoundedHealth(s)), in});
  }
  table.Print(stdout);
}

// `keel breakers --reset KEY` or `--all`.
int Reset(Store* store, const BreakersArgs& args, const std::string& db_path) {
  auto reset = store->ResetBreakers(args.all ? "" : args.reset);
  if (!reset.ok()) return UsageError(reset.status().message());
  if (!args.all && *reset == 0) {
    return UsageError(
        fmt::format("no breaker '{}' in {} (see keel breakers)", args.reset, db_path));
  }
  std::printf("reset %lld breaker%s\n", static_cast<long long>(*reset), *reset == 1 ? "" : "s");
  return kExitSucceeded;
}

}  // namespace

int BreakersCommand(const BreakersArgs& args) {
  std::string db_path = ResolveDbPath(args.db);
  bool writes = args.all || !args.reset.empty();
  auto store = OpenDbIfExists(db_path, writes ? DbAccess::kWrite : DbAccess::kRead);
  if (!store.ok()) return UsageError(store.status().message());
  if (*store == nullptr) {
    if (!args.reset.empty()) {
      return UsageError(fmt::format("no breaker '{}': no database at {}", args.reset, db_path));
    }
    if (args.all) std::printf("reset 0 breakers\n");
    if (args.json) std::printf("[]\n");
    std::fprintf(stderr, "no breakers (no database at %s)\n", db_path.c_str());
    return kExitSucceeded;
  }
  if (args.all || !args.reset.empty()) return Reset(store->get(), args, db_path);

  auto rows = (*store)->ListBreakers();
  if (!rows.ok()) return UsageError(rows.status().message());
  double now = SystemClock()->WallNow();
  if (args.json) {
    PrintJson(*rows, now);
  } else if (rows->empty()) {
    std::fprintf(stderr, "no breakers in %s\n", db_path.c_str());
  } else {
    PrintTable(*rows, now);
  }
  return kExitSucceeded;
}

}  // namespace keel::cli
