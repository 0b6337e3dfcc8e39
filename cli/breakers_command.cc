// `keel breakers`: the circuit breakers shared through the database, their
// health, and resetting them.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/db_postgres.h"
#include "cli/exit_codes.h"
#include "cli/table.h"
#include "engine/clock.h"
#include "views/format.h"
#include "views/breaker_json.h"
#include "views/run_actions.h"
#include "views/json_out.h"

namespace keel::cli {
namespace {

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
  auto reset = ResetBreakerKeys(*store, args.all ? "" : args.reset);
  if (!reset.ok()) {
    return UsageError(fmt::format("{} in {} (see keel breakers)", reset.status().message(),
                                  DbName(db_path)));
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
      return UsageError(fmt::format("no breaker '{}': no database at {}", args.reset, DbName(db_path)));
    }
    if (args.all) std::printf("reset 0 breakers\n");
    if (args.json) std::printf("[]\n");
    std::fprintf(stderr, "no breakers (no database at %s)\n", DbName(db_path).c_str());
    return kExitSucceeded;
  }
  if (args.all || !args.reset.empty()) return Reset(store->get(), args, db_path);

  auto rows = (*store)->ListBreakers();
  if (!rows.ok()) return UsageError(rows.status().message());
  double now = SystemClock()->WallNow();
  if (args.json) {
    JsonOut out;
    WriteBreakersJson(&out, *rows, now);
    out.Print(stdout);
  } else if (rows->empty()) {
    std::fprintf(stderr, "no breakers in %s\n", DbName(db_path).c_str());
  } else {
    PrintTable(*rows, now);
  }
  return kExitSucceeded;
}

}  // namespace keel::cli
