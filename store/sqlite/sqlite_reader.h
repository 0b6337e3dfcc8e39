#pragma once
// SqliteReader: the read side of SqliteStore — a connection of its own and
// the cached statements behind GetRun, GetNodes, GetEvents, ListRuns and
// ListBreakers.
// Each call reads one consistent, committed snapshot (WAL), so reads go on
// while this or another process writes.
//
// Not thread-safe: SqliteStore holds a mutex around every call.

#include <memory>
#include <string>
#include <vector>

#include "store/sqlite/sqlite_util.h"
#include "store/sqlite/sqlite_versions.h"
#include "engine/store.h"

namespace keel::sqlite {

class SqliteReader {
 public:
  // Takes `conn` and prepares the statements.
  static Result<std::unique_ptr<SqliteReader>> Create(std::unique_ptr<Connection> conn);

  SqliteReader(const SqliteReader&) = delete;
  SqliteReader& operator=(const SqliteReader&) = delete;

  // See Store for the contracts. Not-found and ambiguous ids are kPermanent.
  Result<RunRecord> GetRun(const std::string& id);
  Result<std::vector<NodeRecord>> GetNodes(const std::string& run_id);
  Result<std::vector<EventRecord>> GetEvents(const std::string& run_id);
  Result<std::vector<RunListing>> ListRuns(const RunFilter& filter);
  Result<std::vector<BreakerRow>> ListBreakers();
  Result<std::vector<ScriptVersion>> GetScriptVersions(const std::string& run_id) {
    return versions_.Get(run_id);
  }
  // sqlite_waits.cc: whether wait node `node` of run `run_id` has a signal
  // `name` to take (one not taken, or one it took); and Store::CancelRequested.
  Result<bool> HasSignal(const std::string& run_id, const std::string& name,
                         const std::string& node);
  Result<bool> CancelRequested(const std::string& run_id);
  // sqlite_handoff.cc: Store::ListRunsToStart.
  Result<std::vector<Store::StartCandidate>> ListRunsToStart(double now, bool stopped, int limit);
  // sqlite_event_cursor.cc: Store::ReadEventsAfter and LastEventCursor.
  Result<std::vector<Store::CursorEvent>> ReadEventsAfter(int64_t after, const std::string& run_id,
                                                          int limit);
  Result<int64_t> LastEventCursor();
  Result<Store::StateCounts> CountState();
  // sqlite_schedules.cc: Store::LastScheduleTicks.
  Result<std::vector<Store::ScheduleTick>> LastScheduleTicks();
  // store/sqlite/sqlite_service_reads.cc: Store::GetEventsAfter.
  Result<std::vector<EventRecord>> GetEventsAfter(const std::string& run_id, int64_t after,
                                                  int limit);
  // store/sqlite/sqlite_node_reads.cc: the dashboard reads of Store (GetNode,
  // GetNodesInStatus, GetNodeEvents, ListMapItems, CountMapItems).
  Result<std::optional<NodeRecord>> GetNode(const std::string& run_id, const std::string& node);
  Result<std::vector<NodeRecord>> GetNodesInStatus(const std::string& run_id, NodeStatus status,
                                                   int limit);
  Result<std::vector<EventRecord>> GetNodeEvents(const std::string& run_id,
                                                 const std::string& node, int limit);
  Result<Store::ItemPage> ListMapItems(const std::string& run_id, const std::string& map,
                                       std::optional<NodeStatus> status, int64_t offset,
                                       int limit);
  Result<std::vector<Store::ItemCount>> CountMapItems(const std::string& run_id);
  Result<Store::RunOutline> GetRunOutline(const std::string& run_id);
  // PRAGMA data_version of the reading connection, which never writes:
  // it changes with every commit of any other connection.
  Result<int64_t> DataVersion();

 private:
  explicit SqliteReader(std::unique_ptr<Connection> conn) : conn_(std::move(conn)) {}

  Status PrepareAll();
  // Reads the run whose id is exactly `id`; false when there is none.
  Result<bool> ReadRun(const std::string& id, RunRecord* run);

  std::unique_ptr<Connection> conn_;
  Statement run_by_id_;
  Statement ids_by_prefix_;
  Statement nodes_;
  Statement events_;
  Statement list_all_;
  Statement list_by_status_;
  // The listing's SELECT ... FROM runs r, for filters without a statement
  // of their own (workflow, before).
  std::string listing_sql_;
  Statement breakers_;
  VersionReader versions_;
};

}  // namespace keel::sqlite
