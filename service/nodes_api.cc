#include "service/nodes_api.h"

#include <httplib.h>

#include <cstdlib>
#include <string_view>
#include <vector>

#include "engine/clock.h"
#include "service/json_response.h"
#include "service/query_params.h"
#include "service/store_errors.h"
#include "views/item_page.h"
#include "views/json_out.h"
#include "views/node_view.h"

namespace keel::service {
namespace {

constexpr const char* kRunId = "([A-Za-z0-9_.:-]+)";
constexpr const char* kNodeStatusNames =
    "pending, running, succeeded, failed, skipped, cancelled, waiting or fallback";

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes one path segment; false on a malformed escape.
bool DecodeSegment(std::string_view raw, std::string* out) {
  out->clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '%') {
      out->push_back(raw[i]);
      continue;
    }
    if (i + 2 >= raw.size()) return false;
    int hi = HexDigit(raw[i + 1]);
    int lo = HexDigit(raw[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

// What a request under /nodes/ asks for.
struct NodeTarget {
  std::string node;
  std::string what;  // "", "output", "items" or "input"
  std::string dep;   // for "input"
};

// Splits the raw path after "/nodes/" into segments. A trailing "output",
// "items" or "input/DEP" names a sub-resource; otherwise every segment is
// part of the name (so "c/fetch" sent unencoded still names node c/fetch).
bool ParseTarget(const std::string& target, NodeTarget* parsed) {
  std::string_view path(target);
  path = path.substr(0, path.find('?'));
  size_t at = path.find("/nodes/");
  if (at == std::string_view::npos) return false;
  std::string_view rest = path.substr(at + 7);
  std::vector<std::string_view> segments;
  while (true) {
    size_t slash = rest.find('/');
    segments.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
  }
  size_t name_end = segments.size();
  if (segments.size() == 2 && (segments[1] == "output" || segments[1] == "items")) {
    parsed->what = segments[1];
    name_end = 1;
  } else if (segments.size() == 3 && segments[1] == "input") {
    parsed->what = "input";
    if (!DecodeSegment(segments[2], &parsed->dep) || parsed->dep.empty()) return false;
    name_end = 1;
  }
  std::string raw_name;
  for (size_t i = 0; i < name_end; ++i) {
    if (i > 0) raw_name += '/';
    raw_name += segments[i];
  }
  return DecodeSegment(raw_name, &parsed->node) && !parsed->node.empty();
}

// Answers a failed read: an unknown node is 404, the rest as the store's.
void ViewError(httplib::Response& response, const Status& status) {
  if (status.message().starts_with("no node '")) return JsonError(response, 404, status.message());
  StoreError(response, status);
}

// Reads only the page (and the map's record, to tell an unknown name).
void Items(Store& store, const std::string& run_id, const std::string& map,
           const httplib::Request& request, httplib::Response& response) {
  int64_t offset = 0;
  int64_t limit = 0;
  if (!IntParam(request, response, "offset", 0, INT64_MAX, 0, &offset)) return;
  if (!IntParam(request, response, "limit", 1, kMaxItemsPerPage, 100, &limit)) return;
  std::optional<NodeStatus> status;
  if (request.has_param("status")) {
    NodeStatus parsed;
    std::string text = request.get_param_value("status");
    if (!ParseNodeStatus(text, &parsed)) {
      return JsonError(response, 400,
                       "query parameter status '" + text + "': expected " + kNodeStatusNames);
    }
    status = parsed;
  }
  auto run = store.GetRun(run_id);
  if (!run.ok()) return StoreError(response, run.status());
  auto record = store.GetNode(run->id, map);
  if (!record.ok()) return StoreError(response, record.status());
  auto page = store.ListMapItems(run->id, map, status, offset, static_cast<int>(limit));
  if (!page.ok()) return StoreError(response, page.status());
  if (!*record && page->total == 0 && !status) {
    return JsonError(response, 404, "no node '" + map + "' in run " + run->id);
  }
  JsonOut out;
  WriteItemPageJson(&out, *page);
  JsonBody(response, 200, out.Text());
}

}  // namespace

void NodesApi::Register(httplib::Server& server) {
  const std::string route = std::string("/api/v1/runs/") + kRunId + "/nodes/(.+)";
  server.Get(route, [this](const httplib::Request& request, httplib::Response& response) {
    NodeTarget target;
    if (!ParseTarget(request.target, &target)) {
      return JsonError(response, 400,
                       "node name: expected a percent-encoded path segment after /nodes/");
    }
    if (target.what == "items")
      return Items(store_, request.matches[1], target.node, request, response);
    auto view = ReadNodeView(
        store_, request.matches[1], target.node,
        [this](const RunRecord& run, const std::string& node) { return shapes_.Lookup(run, node); },
        SystemClock()->WallNow());
    if (!view.ok()) return ViewError(response, view.status());
    if (target.what == "output" || target.what == "input") {
      auto value = NodeValue(*view, target.what, target.dep);
      if (!value.ok()) return JsonError(response, 404, value.status().message());
      return JsonBody(response, 200, std::move(*value));
    }
    JsonOut out;
    WriteNodeViewJson(&out, *view);
    JsonBody(response, 200, out.Text());
  });
}

}  // namespace keel::service
