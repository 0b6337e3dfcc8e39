#include "service/runs_api.h"

#include <httplib.h>

#include <algorithm>
#include <cstdlib>

#include "engine/clock.h"
#include "service/command_output.h"
#include "service/graph_layout.h"
#include "views/format.h"
#include "views/iso_time.h"
#include "service/json_response.h"
#include "service/query_params.h"
#include "service/store_errors.h"
#include "views/breaker_json.h"
#include "views/event_json.h"
#include "views/json_out.h"
#include "views/run_actions.h"
#include "views/run_detail.h"
#include "views/run_list.h"
#include "views/run_status.h"

namespace keel::service {
namespace {

// A run id or prefix as the routes capture it: no '/' (the route), and
// printable ASCII only, so nothing odd reaches the store or a child's argv.
constexpr const char* kRunId = "([A-Za-z0-9_.:-]+)";

// Seconds a child `keel graph` may take.
constexpr double kGraphTimeout = 20;

double Now() { return SystemClock()->WallNow(); }

void ListRuns(Store& store, ResponseCache& cache, const httplib::Request& request,
              httplib::Response& response) {
  RunListQuery query;
  query.status = request.get_param_value("status");
  query.workflow = request.get_param_value("workflow");
  query.before = request.get_param_value("before");
  query.state = request.get_param_value("state");
  if (request.has_param("since") && !ParseIsoTime(request.get_param_value("since"), &query.since)) {
    return JsonError(response, 400,
                     "query parameter since: expected an ISO 8601 time such as "
                     "2026-11-23T17:52:06Z");
  }
  int64_t limit = 0;
  if (!IntParam(request, response, "limit", 1, kMaxRunsPerPage, 20, &limit, AboveMax::kCap)) {
    return;
  }
  query.limit = static_cast<int>(limit);
  if (!query.before.empty()) {
    auto cursor = store.GetRun(query.before);
    if (!cursor.ok() || cursor->id != query.before) {
      JsonError(response, 400, "query parameter before: no run with exactly this id");
      return;
    }
  }
  // The version is read before the listing, so a commit in between makes
  // the kept answer out of date at once rather than hiding the commit.
  std::optional<std::string> body = cache.Get(request.target, [&]() -> std::optional<std::string> {
    double now = Now();
    auto rows = ListLabelledRuns(store, query, now);
    if (!rows.ok()) {
      if (rows.status().kind() == ErrorKind::kPermanent &&
          rows.status().message().starts_with("'")) {
        // ListLabelledRuns checks the status, then the state.
        RunStatus parsed;
        bool status_ok = query.status.empty() || ParseRunStatus(query.status, &parsed);
        bool state = !query.state.empty() && status_ok && !IsLiveStateName(query.state);
        JsonError(response, 400,
                  std::string("query parameter ") + (state ? "state " : "status ") +
                      rows.status().message());
      } else {
        StoreError(response, rows.status());
      }
      return std::nullopt;
    }
    JsonOut out;
    WriteRunListJson(&out, *rows, now);
    return out.Text();
  });
  if (body) JsonBody(response, 200, std::move(*body));
}

void ShowRun(Store& store, const httplib::Request& request, httplib::Response& response) {
  // items=false: each map's items collapse into its counts, read in SQL.
  bool items = request.get_param_value("items") != "false";
  auto detail =
      ReadRunDetail(store, request.matches[1], FlagParam(request, "events"), items, nullptr, Now());
  if (!detail.ok()) return StoreError(response, detail.status());
  JsonOut out;
  WriteRunDetailJson(&out, *detail);
  JsonBody(response, 200, out.Text());
}

void ListEvents(Store& store, const httplib::Request& request, httplib::Response& response) {
  int64_t after = 0;
  int64_t limit = 0;
  if (!IntParam(request, response, "after", 0, INT64_MAX, 0, &after)) return;
  if (!IntParam(request, response, "limit", 1, kMaxEventsPerPage, 1000, &limit, AboveMax::kCap)) {
    return;
  }
  auto run = store.GetRun(request.matches[1]);
  if (!run.ok()) return StoreError(response, run.status());
  auto events = store.GetEventsAfter(run->id, after, static_cast<int>(limit));
  if (!events.ok()) return StoreError(response, events.status());
  JsonOut out;
  out.BeginObject();
  out.Key("run_id").String(run->id);
  out.Key("events");
  out.BeginArray();
  // Recorded prompts and replies only when asked (?bodies=true): the
  // node endpoint has them, and a page of 1000 calls would be megabytes.
  EventJsonOptions options;
  options.bodies = FlagParam(request, "bodies");
  for (const EventRecord& event : *events) WriteEventJson(&out, event, options);
  out.EndArray();
  // The cursor of the next page; null once this page was the last.
  out.Key("next_after");
  if (static_cast<int64_t>(events->size()) == limit) {
    out.Int(events->back().seq);
  } else {
    out.Null();
  }
  out.EndObject();
  JsonBody(response, 200, out.Text());
}

void ListBreakers(Store& store, const httplib::Request& request, httplib::Response& response) {
  auto rows = store.ListBreakers();
  if (!rows.ok()) return StoreError(response, rows.status());
  JsonOut out;
  if (FlagParam(request, "summary")) {
    WriteBreakersWithSummaryJson(&out, *rows, Now());
  } else {
    WriteBreakersJson(&out, *rows, Now());
  }
  JsonBody(response, 200, out.Text());
}

// An unknown breaker is 404; the rest as StoreError says.
void BreakerError(httplib::Response& response, const Status& status) {
  if (IsUnknownBreaker(status)) return JsonError(response, 404, status.message());
  StoreError(response, status);
}

void Cancel(Store& store, const httplib::Request& request, httplib::Response& response) {
  auto decision = CancelRunNow(store, request.matches[1], Now());
  if (!decision.ok()) return StoreError(response, decision.status());
  bool requested = decision->outcome == CancelOutcome::kRequested;
  JsonOut out;
  out.BeginObject();
  out.Key("run_id").String(decision->run.id);
  // "cancelled": recorded so now; "requested": its live process was asked
  // to stop, and records it cancelled within a second or so.
  out.Key("outcome").String(requested ? "requested" : "cancelled");
  out.Key("was").String(decision->was);
  out.EndObject();
  JsonBody(response, requested ? 202 : 200, out.Text());
}

void Signal(Store& store, const httplib::Request& request, httplib::Response& response) {
  std::string data = request.body.empty() ? "null" : request.body;
  Status valid = CheckSignalData(data);
  if (!valid.ok()) return JsonError(response, 400, "request body " + valid.message());
  std::string name = request.matches[2];
  auto run = SendRunSignal(store, request.matches[1], name, data, Now());
  if (!run.ok()) return StoreError(response, run.status());
  auto now_run = store.GetRun(run->id);
  JsonOut out;
  out.BeginObject();
  out.Key("run_id").String(run->id);
  out.Key("signal").String(name);
  out.Key("status").String(RunStatusLabel(now_run.ok() ? *now_run : *run, Now()));
  out.EndObject();
  JsonBody(response, 200, out.Text());
}

void ResetBreakers(Store& store, const std::string& key, httplib::Response& response) {
  auto reset = ResetBreakerKeys(store, key);
  if (!reset.ok()) return BreakerError(response, reset.status());
  JsonOut out;
  out.BeginObject();
  out.Key("reset").Int(*reset);
  out.EndObject();
  JsonBody(response, 200, out.Text());
}

// POST breakers/KEY/force-open, /disable or /close: `keel breakers
// --force-open KEY`, ... Answers {"key", "state", "was", "changed"}.
void OperateBreakerKey(Store& store, const std::string& key, BreakerState target,
                       httplib::Response& response) {
  auto order = OperateBreaker(store, key, target, Now());
  if (!order.ok()) return BreakerError(response, order.status());
  JsonOut out;
  out.BeginObject();
  out.Key("key").String(key);
  out.Key("state").String(BreakerStateName(order->now.state));
  out.Key("was").String(BreakerStateName(order->was));
  out.Key("changed").Raw(order->transition == BreakerTransition::kNone ? "false" : "true");
  out.EndObject();
  JsonBody(response, 200, out.Text());
}

}  // namespace

void RunsApi::Register(httplib::Server& server) {
  const std::string runs = "/api/v1/runs";
  const std::string run = runs + "/" + kRunId;
  server.Get(runs, [this](const httplib::Request& q, httplib::Response& r) {
    ListRuns(store_, cache_, q, r);
  });
  server.Get(run, [this](const httplib::Request& q, httplib::Response& r) { ShowRun(store_, q, r); });
  server.Get(run + "/events", [this](const httplib::Request& q, httplib::Response& r) {
    ListEvents(store_, q, r);
  });
  server.Get(run + "/graph", [this](const httplib::Request& q, httplib::Response& r) {
    const bool laid_out = q.has_param("layout");
    if (laid_out && q.get_param_value("layout") != "dot") {
      return JsonError(r, 400, "query parameter layout: expected dot");
    }
    auto found = store_.GetRun(q.matches[1]);
    if (!found.ok()) return StoreError(r, found.status());
    auto child = RunForOutput(
        {options_.keel_path, "graph", found->id, "--format", "json", "--db", options_.db},
        kGraphTimeout);
    if (!child.ok()) {
      return JsonError(r, 500, "cannot draw run " + found->id + ": " + child.status().message());
    }
    if (child->exit_code != 0) {
      return JsonError(r, 500, "cannot draw run " + found->id + ": " + FirstLine(child->err));
    }
    if (laid_out) {
      auto layout = layouts_.AddLayout(child->out);
      if (!layout.ok()) {
        return JsonError(r, 500, "cannot lay out run " + found->id + ": " +
                                     layout.status().message());
      }
      return JsonBody(r, 200, std::move(*layout));
    }
    JsonBody(r, 200, std::move(child->out));
  });
  server.Post(run + "/cancel", [this](const httplib::Request& q, httplib::Response& r) {
    Cancel(store_, q, r);
  });
  server.Post(run + "/signals/([^/]+)", [this](const httplib::Request& q, httplib::Response& r) {
    Signal(store_, q, r);
  });
  server.Get("/api/v1/breakers", [this](const httplib::Request& q, httplib::Response& r) {
    ListBreakers(store_, q, r);
  });
  server.Post("/api/v1/breakers/reset", [this](const httplib::Request&, httplib::Response& r) {
    ResetBreakers(store_, "", r);
  });
  server.Post("/api/v1/breakers/(.+)/reset", [this](const httplib::Request& q,
                                                     httplib::Response& r) {
    ResetBreakers(store_, q.matches[1], r);
  });
  for (const auto& order :
       {std::pair{"force-open", BreakerState::kForcedOpen},
        std::pair{"disable", BreakerState::kDisabled}, std::pair{"close", BreakerState::kClosed}}) {
    const BreakerState target = order.second;  // a copy the handler keeps
    server.Post(std::string("/api/v1/breakers/(.+)/") + order.first,
                [this, target](const httplib::Request& q, httplib::Response& r) {
                  OperateBreakerKey(store_, q.matches[1], target, r);
                });
  }
}

}  // namespace keel::service
