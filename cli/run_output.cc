#include "cli/run_output.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdio>
#include <string>

#include "cli/standard_streams.h"
#include "views/format.h"
#include "views/json_out.h"

namespace keel::cli {
namespace {

// `json` on one line; unchanged when it does not parse.
std::string Compact(const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.c_str(), json.size());
  if (doc.HasParseError()) return json;
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  doc.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize());
}

int CountDone(const RunOutcome& outcome) {
  int done = 0;
  for (const NodeResult& r : outcome.results) done += IsKeptOnResume(r.status) ? 1 : 0;
  return done;
}

void PrintText(const RunReport& report, const WorkflowSpec& workflow, double seconds) {
  std::printf("run %s %s in %s (%d/%zu nodes)\n", report.run_id.c_str(),
              std::string(RunStatusName(report.status)).c_str(), FormatSeconds(seconds).c_str(),
              CountDone(report.outcome), workflow.nodes.size());
  for (const auto& [node, output] : report.outputs) {
    std::printf("  %s = %s\n", node.c_str(), output ? Compact(*output).c_str() : "null");
  }
  if (report.status == RunStatus::kFailed && !report.error.empty()) {
    // One line; a Lua traceback that follows it is in `keel show`.
    std::printf("error: %s\n", FirstLine(report.error).c_str());
  }
  const RunOutcome& outcome = report.outcome;
  if (!outcome.escalation.empty()) {
    std::string line = "escalated to " + outcome.escalation + ": " +
                       std::string(RunStatusName(outcome.escalation_status));
    if (!outcome.escalation_error.empty()) line += ": " + FirstLine(outcome.escalation_error);
    std::printf("%s\n", line.c_str());
  }
  if (report.status == RunStatus::kDegraded) {
    for (size_t i = 0; i < workflow.nodes.size() && i < report.outcome.results.size(); ++i) {
      const NodeResult& r = report.outcome.results[i];
      if (r.status != NodeStatus::kFailed) continue;
      std::printf("warning: optional node %s failed: %s\n", workflow.nodes[i].name.c_str(),
                  FirstLine(r.error.ToString()).c_str());
    }
  }
}

void PrintJson(const RunReport& report, const WorkflowSpec& workflow, double seconds,
               const LlmTotals& usage) {
  JsonOut out;
  out.BeginObject();
  out.Key("run_id").String(report.run_id);
  out.Key("workflow").String(workflow.name);
  out.Key("status").String(RunStatusName(report.status));
  out.Key("duration_s").Seconds(seconds);
  out.Key("outputs");
  out.BeginObject();
  for (const auto& [node, output] : report.outputs) {
    out.Key(node).Raw(output ? std::optional<std::string>(*output) : std::nullopt);
  }
  out.EndObject();
  out.Key("nodes");
  out.BeginObject();
  for (size_t i = 0; i < workflow.nodes.size() && i < report.outcome.results.size(); ++i) {
    const NodeResult& r = report.outcome.results[i];
    out.Key(workflow.nodes[i].name);
    out.BeginObject();
    out.Key("status").String(NodeStatusName(r.status));
    out.Key("attempts").Int(i < report.outcome.attempts.size() ? report.outcome.attempts[i] : 0);
    out.Key("error_kind").StringOrNull(r.error.ok() ? "" : ErrorKindName(r.error.kind()));
    out.Key("error").StringOrNull(r.error.ok() ? "" : r.error.message());
    if (r.status == NodeStatus::kWaiting && r.output) {
      out.Key("waiting_for").Raw(*r.output);  // {"signal": NAME} and/or {"due": T}
    }
    out.EndObject();
  }
  out.EndObject();
  out.Key("error").StringOrNull(report.error);
  // The on_failure workflow the run's failure started; null when none ran.
  out.Key("escalation");
  if (report.outcome.escalation.empty()) {
    out.Null();
  } else {
    out.BeginObject();
    out.Key("workflow").String(report.outcome.escalation);
    out.Key("status").String(RunStatusName(report.outcome.escalation_status));
    out.Key("error").StringOrNull(report.outcome.escalation_error);
    out.EndObject();
  }
  out.Key("usage");
  WriteUsageJson(&out, usage);
  out.EndObject();
  out.Print(stdout);
}

}  // namespace

void PrintRunReport(const RunReport& report, const WorkflowSpec& workflow, double seconds,
                    const LlmTotals& usage, bool json) {
  if (json) {
    PrintJson(report, workflow, seconds, usage);
  } else {
    PrintText(report, workflow, seconds);
  }
  FlushStdout();
  if (!json && usage.calls > 0) {
    std::fprintf(stderr, "tokens: %s\n", DescribeTokens(usage.usage).c_str());
  }
}

}  // namespace keel::cli
