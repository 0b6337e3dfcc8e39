#include "views/provider_check.h"

#include <cmath>

namespace keel {

void WriteProviderCheckJson(JsonOut& out, const ProviderCheck& check) {
  out.BeginObject();
  out.Key("provider").String(check.provider);
  out.Key("kind").String(check.kind);
  out.Key("file").String(check.file);
  out.Key("endpoint").StringOrNull(check.endpoint);
  out.Key("model").StringOrNull(check.model);
  if (check.health_interval > 0) {
    out.Key("health_interval").Double(check.health_interval);
  } else {
    out.Key("health_interval").Null();
  }
  out.Key("result").String(check.result);
  out.Key("failed_step").StringOrNull(check.failed_step);
  out.Key("error").StringOrNull(check.error);
  out.Key("checked_at").TimeOrNull(check.checked_at);
  if (check.checked_at > 0) {
    out.Key("seconds").Seconds(check.seconds);
  } else {
    out.Key("seconds").Null();
  }
  out.Key("steps").BeginArray();
  for (const ProviderCheckStep& step : check.steps) {
    out.BeginObject();
    out.Key("step").String(step.name);
    out.Key("ok").Raw(std::string(step.ok ? "true" : "false"));
    out.Key("seconds").Seconds(step.seconds);
    out.Key("detail").String(step.detail);
    out.EndObject();
  }
  out.EndArray();
  out.EndObject();
}

std::string ProviderCheckJson(const ProviderCheck& check) {
  JsonOut out;
  WriteProviderCheckJson(out, check);
  return out.Text();
}

namespace {

std::string Millis(double seconds) {
  return std::to_string(static_cast<long long>(std::llround(seconds * 1000))) + " ms";
}

}  // namespace

std::string ProviderCheckLine(const ProviderCheck& check) {
  std::string line = check.provider + ": ";
  if (check.result == "pending") return line + "not checked yet";
  if (check.result != "ok") {
    return line + "FAILED at " + check.failed_step + ": " + check.error;
  }
  line += "ok (";
  bool first = true;
  for (const ProviderCheckStep& step : check.steps) {
    if (!first) line += ", ";
    first = false;
    line += step.name + " ";
    line += step.seconds ? Millis(*step.seconds) : step.detail;
  }
  return line + ")";
}

}  // namespace keel
