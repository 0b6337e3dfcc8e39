#include "service/alert_payload.h"

#include "views/json_out.h"

namespace keel::service {

std::string AlertPayloadJson(const Store::AlertRow& row) {
  JsonOut out;
  out.BeginObject();
  out.Key("kind").String(row.kind);
  out.Key("dedupe_id").String(row.dedupe_key);
  out.Key("time").TimeOrNull(row.at);
  out.Key("run_id").StringOrNull(row.run_id);
  out.Key("workflow").StringOrNull(row.workflow);
  out.Key("status").StringOrNull(row.status);
  out.Key("error").StringOrNull(row.error);
  out.Key("breaker").StringOrNull(row.breaker_key);
  out.Key("attempt").Int(row.attempts + 1);
  out.EndObject();
  return out.Text();
}

}  // namespace keel::service
