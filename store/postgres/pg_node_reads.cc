#include "store/postgres/pg_node_reads.h"

#include "engine/utf8.h"

#include "store/postgres/pg_rows.h"

namespace keel::pg {
namespace {

// The items of map $2 (prefix $2 || '['; $3 is one past the prefix, $4 the
// index's first character): names map[N] with no '/' after the prefix, so
// not the items' inner nodes. ~>=~ and ~<~ compare bytes, as the
// text_pattern_ops index on (run_id, node) is ordered, so the prefix range
// walks it.
constexpr char kItemsWhere[] =
    " WHERE run_id = $1 AND node ~>=~ $2 AND node ~<~ $3 AND substr(node, $4) ~ '^[0-9].*\\]$' "
    "AND strpos(substr(node, $4), '/') = 0";
// The index as a number: the digits after '['.
constexpr char kItemOrder[] = " ORDER BY substring(substr(node, $4) from '^[0-9]+')::numeric, ord";

// Items are the names ending in [N] whose map (the name without it) has no
// '[' (as views/item_names.h splits them).
constexpr char kCountItems[] =
    "SELECT map, status, count(*) FROM (SELECT left(rtrim(node, '0123456789]'), -1) AS map, "
    "status FROM nodes WHERE run_id = $1 AND node ~ '\\[[0-9].*\\]$') items "
    "WHERE strpos(map, '[') = 0 AND map <> '' GROUP BY map, status "
    "ORDER BY map COLLATE \"C\", status COLLATE \"C\"";

std::string SelectNodes() { return std::string("SELECT ") + kNodeColumns + " FROM nodes"; }
std::string SelectEvents() { return std::string("SELECT ") + kEventColumns + " FROM events"; }

// `limit` as a LIMIT parameter: NULL (all) when it is not above 0.
std::optional<std::string> AllUnlessPositive(int limit) {
  if (limit <= 0) return std::nullopt;
  return Num(limit);
}

void Node(const Rows& r, int i, NodeRecord* n) { NodeFromRow(r, i, n); }
void Event(const Rows& r, int i, EventRecord* e) { EventFromRow(r, i, e); }

std::vector<Store::ItemCount> ItemCounts(const Rows& r) {
  std::vector<Store::ItemCount> counts(static_cast<size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i) {
    Store::ItemCount& c = counts[static_cast<size_t>(i)];
    c.map = r.str(i, 0);
    c.status = NodeStatus::kFailed;
    ParseNodeStatus(r.text(i, 1), &c.status);
    c.count = r.int64(i, 2);
  }
  return counts;
}

}  // namespace

Result<std::optional<NodeRecord>> GetNode(Connection& conn, const std::string& run_id,
                                          const std::string& node) {
  auto rows =
      ReadRows<NodeRecord>(conn, SelectNodes() + " WHERE run_id = $1 AND node = $2", {run_id, node},
                           "reading node " + node + " of run " + run_id, Node);
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return std::optional<NodeRecord>();
  return std::optional<NodeRecord>(std::move(rows->front()));
}

Result<std::vector<NodeRecord>> GetNodesInStatus(Connection& conn, const std::string& run_id,
                                                 NodeStatus status, int limit) {
  return ReadRows<NodeRecord>(
      conn, SelectNodes() + " WHERE run_id = $1 AND status = $2 ORDER BY ord LIMIT $3",
      {run_id, std::string(NodeStatusName(status)), AllUnlessPositive(limit)},
      "reading the nodes of run " + run_id, Node);
}

Result<std::vector<EventRecord>> GetNodeEvents(Connection& conn, const std::string& run_id,
                                               const std::string& node, int limit) {
  // The newest `limit` through the index backwards, then put in seq order.
  return ReadRows<EventRecord>(
      conn,
      "SELECT * FROM (" + SelectEvents() +
          " WHERE run_id = $1 AND node = $2 ORDER BY seq DESC LIMIT $3) newest ORDER BY seq",
      {run_id, node, AllUnlessPositive(limit)},
      "reading the events of node " + node + " of run " + run_id, Event);
}

Result<Store::ItemPage> ListMapItems(Connection& conn, const std::string& run_id,
                                     const std::string& map, std::optional<NodeStatus> status,
                                     int64_t offset, int limit) {
  const std::string where = std::string(kItemsWhere) + (status ? " AND status = $5" : "");
  const std::string low = map + "[";
  const std::string high = map + "\\";  // '\' follows '[' in ASCII
  Params params{run_id, low, high, Num(static_cast<int64_t>(Utf8Length(low) + 1))};
  if (status) params.push_back(std::string(NodeStatusName(*status)));
  Params page_params = params;
  // $4 is used by both; the page's LIMIT and OFFSET follow the status.
  const std::string n = std::to_string(params.size() + 1);
  const std::string m = std::to_string(params.size() + 2);
  page_params.push_back(limit < 0 ? std::nullopt : std::optional<std::string>(Num(limit)));
  page_params.push_back(Num(offset < 0 ? int64_t{0} : offset));
  const std::string what = "reading the items of map " + map + " of run " + run_id;
  auto rows = conn.Pipeline(
      {{"SELECT count(*) FROM nodes" + where, params},
       {SelectNodes() + where + kItemOrder + " LIMIT $" + n + " OFFSET $" + m, page_params}},
      what);
  if (!rows.ok()) return rows.status();
  Store::ItemPage page;
  page.total = (*rows)[0].int64(0, 0);
  const Rows& items = (*rows)[1];
  page.items.resize(static_cast<size_t>(items.size()));
  for (int i = 0; i < items.size(); ++i) NodeFromRow(items, i, &page.items[static_cast<size_t>(i)]);
  return page;
}

Result<std::vector<Store::ItemCount>> CountMapItems(Connection& conn, const std::string& run_id) {
  auto rows = conn.Exec(kCountItems, {run_id}, "counting the items of run " + run_id);
  if (!rows.ok()) return rows.status();
  return ItemCounts(*rows);
}

Result<Store::RunOutline> GetRunOutline(Connection& conn, const std::string& run_id) {
  Store::RunOutline outline;
  const std::string what = "reading run " + run_id;
  Status status = conn.Transaction(
      [&](Connection& c) -> Status {
        auto rows = c.Pipeline(
            {{SelectNodes() + " WHERE run_id = $1 AND strpos(node, '[') = 0 ORDER BY ord",
              {run_id}},
             {SelectEvents() +
                  " WHERE run_id = $1 AND (strpos(node, '[') = 0 OR kind IN ('llm_call', "
                  "'fallback_event')) ORDER BY seq",
              {run_id}},
             {kCountItems, {run_id}}},
            what);
        if (!rows.ok()) return rows.status();
        const Rows& nodes = (*rows)[0];
        outline.nodes.assign(static_cast<size_t>(nodes.size()), NodeRecord());
        for (int i = 0; i < nodes.size(); ++i)
          Node(nodes, i, &outline.nodes[static_cast<size_t>(i)]);
        const Rows& events = (*rows)[1];
        outline.events.assign(static_cast<size_t>(events.size()), EventRecord());
        for (int i = 0; i < events.size(); ++i) {
          Event(events, i, &outline.events[static_cast<size_t>(i)]);
        }
        outline.items = ItemCounts((*rows)[2]);
        return Status::Ok();
      },
      what, "REPEATABLE READ, READ ONLY");
  if (!status.ok()) return status;
  return outline;
}

}  // namespace keel::pg
