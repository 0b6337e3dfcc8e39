// The dashboard's reads of one node and of a map's items: SqliteReader's
// GetNode, GetNodesInStatus, GetNodeEvents, ListMapItems and CountMapItems,
// and the SqliteStore / SqliteReadOnlyStore methods that lock and call them.
// Each reads through an index of schema version 12 (events_by_node,
// nodes_by_status) or the nodes' primary key, never the run's whole history.

#include <string>

#include "engine/utf8.h"
#include "store/sqlite/sqlite_read_only_store.h"
#include "store/sqlite/sqlite_reader.h"
#include "store/sqlite/sqlite_rows.h"
#include "store/sqlite/sqlite_store.h"

namespace keel {
namespace sqlite {
namespace {

// The items of map ?2 (prefix ?2 || '['; ?3 is one past the prefix, ?4 the
// index's first character): names map[N] with no '/' after the prefix, so
// not the items' inner nodes. The prefix range walks the index.
constexpr char kItemsWhere[] =
    "WHERE run_id = ?1 AND node >= ?2 AND node < ?3 AND substr(node, ?4) GLOB '[0-9]*]' AND "
    "instr(substr(node, ?4), '/') = 0";

// Binds the item range of map `map` to ?1..?4.
void BindItems(Statement* stmt, const std::string& run_id, const std::string& map, std::string* low,
               std::string* high) {
  *low = map + "[";
  *high = map + "\\";  // '\' follows '[' in ASCII
  stmt->Bind(1, run_id).Bind(2, *low).Bind(3, *high).Bind(4, static_cast<int64_t>(Utf8Length(*low) + 1));
}

}  // namespace

Result<std::optional<NodeRecord>> SqliteReader::GetNode(const std::string& run_id,
                                                        const std::string& node) {
  Statement stmt;
  Status prepared = stmt.Prepare(
      conn_.get(), (std::string(kSelectNodeColumns) + "WHERE run_id = ?1 AND node = ?2").c_str());
  if (!prepared.ok()) return prepared;
  stmt.Bind(1, run_id).Bind(2, node);
  auto rows = ReadRows<NodeRecord>(stmt, "reading node " + node + " of run " + run_id, NodeFromRow);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<NodeRecord>();
  return std::optional<NodeRecord>(std::move(rows->front()));
}

Result<std::vector<NodeRecord>> SqliteReader::GetNodesInStatus(const std::string& run_id,
                                                               NodeStatus status, int limit) {
  Statement stmt;
  Status prepared = stmt.Prepare(
      conn_.get(),
      (std::string(kSelectNodeColumns) + "WHERE run_id = ?1 AND status = ?2 ORDER BY rowid LIMIT ?3")
          .c_str());
  if (!prepared.ok()) return prepared;
  stmt.Bind(1, run_id).Bind(2, NodeStatusName(status)).Bind(3, limit > 0 ? int64_t{limit} : -1);
  return ReadRows<NodeRecord>(stmt, "reading the nodes of run " + run_id, NodeFromRow);
}

Result<std::vector<EventRecord>> SqliteReader::GetNodeEvents(const std::string& run_id,
                                                             const std::string& node, int limit) {
  // The newest `limit` through the index backwards, then put in seq order.
  Statement stmt;
  Status prepared = stmt.Prepare(
      conn_.get(), (std::string("SELECT * FROM (") + kSelectEventColumns +
                    "WHERE run_id = ?1 AND node = ?2 ORDER BY seq DESC LIMIT ?3) ORDER BY seq")
                       .c_str());
  if (!prepared.ok()) return prepared;
  stmt.Bind(1, run_id).Bind(2, node).Bind(3, limit > 0 ? int64_t{limit} : -1);
  return ReadRows<EventRecord>(stmt, "reading the events of node " + node + " of run " + run_id,
                           EventFromRow);
}

Result<Store::ItemPage> SqliteReader::ListMapItems(const std::string& run_id,
                                                   const std::string& map,
                                                   std::optional<NodeStatus> status, int64_t offset,
                                                   int limit) {
  const std::string where = std::string(kItemsWhere) + (status ? " AND status = ?5" : "");
  const std::string what = "reading the items of map " + map + " of run " + run_id;
  std::string low, high;
  Store::ItemPage page;
  {
    Statement count;
    Status prepared = count.Prepare(conn_.get(), ("SELECT count(*) FROM nodes " + where).c_str());
    if (!prepared.ok()) return prepared;
    BindItems(&count, run_id, map, &low, &high);
    if (status) count.Bind(5, NodeStatusName(*status));
    Status stepped;
    if (count.Step(&stepped, what)) page.total = count.Int(0);
    count.Reset();
    if (!stepped.ok()) return stepped;
  }
  Statement stmt;
  // SQLite keeps only offset + limit rows in its sorter, not every item.
  Status prepared =
      stmt.Prepare(conn_.get(), (std::string(kSelectNodeColumns) + where +
                                 " ORDER BY CAST(substr(node, ?4) AS INTEGER) LIMIT ?6 OFFSET ?7")
                                    .c_str());
  if (!prepared.ok()) return prepared;
  BindItems(&stmt, run_id, map, &low, &high);
  if (status) stmt.Bind(5, NodeStatusName(*status));
  stmt.Bind(6, int64_t{limit}).Bind(7, offset);
  auto items = ReadRows<NodeRecord>(stmt, what, NodeFromRow);
  if (!items.ok()) return items.status();
  page.items = std::move(*items);
  return page;
}

Result<std::vector<Store::ItemCount>> SqliteReader::CountMapItems(const std::string& run_id) {
  // Items are the names ending in [N] whose map (the name without it) has
  // no '[' (as views/item_names.h splits them); counted in the database.
  Statement stmt;
  Status prepared = stmt.Prepare(
      conn_.get(),
      "SELECT map, status, count(*) FROM (SELECT substr(rtrim(node, '0123456789]'), 1, "
      "length(rtrim(node, '0123456789]')) - 1) AS map, status FROM nodes WHERE run_id = ?1 AND "
      "node GLOB '*[[][0-9]*]') WHERE instr(map, '[') = 0 AND map <> '' GROUP BY map, status");
  if (!prepared.ok()) return prepared;
  stmt.Bind(1, run_id);
  return ReadRows<Store::ItemCount>(stmt, "counting the items of run " + run_id,
                                [](const Statement& row, Store::ItemCount* c) {
                                  c->map = row.Text(0);
                                  c->status = NodeStatus::kFailed;
                                  ParseNodeStatus(row.Text(1), &c->status);
                                  c->count = row.Int(2);
                                });
}

Result<Store::RunOutline> SqliteReader::GetRunOutline(const std::string& run_id) {
  // One read transaction, so the three reads agree.
  Status begun = conn_->Exec("BEGIN", "reading run " + run_id);
  if (!begun.ok()) return begun;
  Store::RunOutline outline;
  Status status = [&]() -> Status {
    Statement nodes;
    Status s = nodes.Prepare(
        conn_.get(),
        (std::string(kSelectNodeColumns) + "WHERE run_id = ?1 AND instr(node, '[') = 0 ORDER BY rowid")
            .c_str());
    if (!s.ok()) return s;
    nodes.Bind(1, run_id);
    auto node_rows = ReadRows<NodeRecord>(nodes, "reading the nodes of run " + run_id, NodeFromRow);
    if (!node_rows.ok()) return node_rows.status();
    outline.nodes = std::move(*node_rows);
    Statement events;
    s = events.Prepare(conn_.get(),
                       (std::string(kSelectEventColumns) +
                        "WHERE run_id = ?1 AND (instr(node, '[') = 0 OR kind IN ('llm_call', "
                        "'fallback_event')) ORDER BY seq")
                           .c_str());
    if (!s.ok()) return s;
    events.Bind(1, run_id);
    auto event_rows = ReadRows<EventRecord>(events, "reading the events of run " + run_id, EventFromRow);
    if (!event_rows.ok()) return event_rows.status();
    outline.events = std::move(*event_rows);
    auto counts = CountMapItems(run_id);
    if (!counts.ok()) return counts.status();
    outline.items = std::move(*counts);
    return Status::Ok();
  }();
  (void)conn_->Exec("COMMIT", "reading run " + run_id);
  if (!status.ok()) return status;
  return outline;
}

}  // namespace sqlite

#define KEEL_FORWARD_NODE_READS(Class, mu)                                                       \
  Result<std::optional<NodeRecord>> Class::GetNode(const std::string& run_id,                    \
                                                   const std::string& node) {                    \
    MutexLock lock(&mu);                                                                         \
    return reader_->GetNode(run_id, node);                                                       \
  }                                                                                              \
  Result<std::vector<NodeRecord>> Class::GetNodesInStatus(const std::string& run_id,             \
                                                          NodeStatus status, int limit) {        \
    MutexLock lock(&mu);                                                                         \
    return reader_->GetNodesInStatus(run_id, status, limit);                                     \
  }                                                                                              \
  Result<std::vector<EventRecord>> Class::GetNodeEvents(const std::string& run_id,               \
                                                        const std::string& node, int limit) {    \
    MutexLock lock(&mu);                                                                         \
    return reader_->GetNodeEvents(run_id, node, limit);                                          \
  }                                                                                              \
  Result<Store::ItemPage> Class::ListMapItems(const std::string& run_id, const std::string& map, \
                                              std::optional<NodeStatus> status, int64_t offset,  \
                                              int limit) {                                       \
    MutexLock lock(&mu);                                                                         \
    return reader_->ListMapItems(run_id, map, status, offset, limit);                            \
  }                                                                                              \
  Result<std::vector<Store::ItemCount>> Class::CountMapItems(const std::string& run_id) {        \
    MutexLock lock(&mu);                                                                         \
    return reader_->CountMapItems(run_id);                                                       \
  }                                                                                              \
  Result<Store::RunOutline> Class::GetRunOutline(const std::string& run_id) {                    \
    MutexLock lock(&mu);                                                                         \
    return reader_->GetRunOutline(run_id);                                                       \
  }

KEEL_FORWARD_NODE_READS(SqliteStore, read_mu_)
KEEL_FORWARD_NODE_READS(SqliteReadOnlyStore, mu_)

#undef KEEL_FORWARD_NODE_READS

}  // namespace keel
