#include "views/schedule_listing.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "views/format.h"

namespace keel {
namespace {

Status Malformed(const std::string& what) {
  return Status::Error(ErrorKind::kPermanent, "schedule listing: " + what);
}

// object[field] as a string: "" when null; false when missing or another type.
bool ReadString(const rapidjson::Value& object, const char* field, std::string* out,
                bool nullable = false) {
  auto it = object.FindMember(field);
  if (it == object.MemberEnd()) return false;
  if (nullable && it->value.IsNull()) {
    out->clear();
    return true;
  }
  if (!it->value.IsString()) return false;
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

bool ReadInt(const rapidjson::Value& object, const char* field, int64_t* out,
             bool nullable = false) {
  auto it = object.FindMember(field);
  if (it == object.MemberEnd()) return false;
  if (nullable && it->value.IsNull()) {
    *out = 0;
    return true;
  }
  if (!it->value.IsInt64()) return false;
  *out = it->value.GetInt64();
  return true;
}

}  // namespace

void WriteScheduleListingJson(const ScheduleListingSet& set, JsonOut* out) {
  out->BeginObject();
  out->Key("schedules").BeginArray();
  for (const ScheduleListing& s : set.schedules) {
    out->BeginObject();
    out->Key("key").String(s.key);
    out->Key("file").String(s.file);
    out->Key("name").StringOrNull(s.name);
    out->Key("index").Int(s.index);
    out->Key("cron").StringOrNull(s.cron);
    if (s.every > 0) {
      out->Key("every").Int(s.every);
    } else {
      out->Key("every").Null();
    }
    out->Key("workflow").String(s.workflow);
    out->Key("params").Raw(s.params_json);
    out->Key("script_path").String(s.script_path);
    out->Key("script_sha256").String(s.script_sha256);
    out->Key("node_count").Int(s.node_count);
    out->Key("next_tick").Int(s.next_tick);
    out->Key("next_tick_at").String(FormatIsoUtc(static_cast<double>(s.next_tick)));
    out->Key("script_text").String(s.script_text);
    out->EndObject();
  }
  out->EndArray();
  out->Key("errors").BeginArray();
  for (const ScheduleFileError& e : set.errors) {
    out->BeginObject();
    out->Key("file").String(e.file);
    out->Key("error").String(e.error);
    out->EndObject();
  }
  out->EndArray();
  out->EndObject();
}

Result<ScheduleListingSet> ParseScheduleListingJson(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  if (doc.HasParseError() || !doc.IsObject()) return Malformed("not a JSON object");
  auto schedules = doc.FindMember("schedules");
  auto errors = doc.FindMember("errors");
  if (schedules == doc.MemberEnd() || !schedules->value.IsArray() || errors == doc.MemberEnd() ||
      !errors->value.IsArray()) {
    return Malformed("expected arrays 'schedules' and 'errors'");
  }
  ScheduleListingSet set;
  for (const rapidjson::Value& item : schedules->value.GetArray()) {
    if (!item.IsObject()) return Malformed("a schedule is not an object");
    ScheduleListing& s = set.schedules.emplace_back();
    int64_t index = 0;
    int64_t node_count = 0;
    bool ok = ReadString(item, "key", &s.key) && ReadString(item, "file", &s.file) &&
              ReadString(item, "name", &s.name, true) && ReadInt(item, "index", &index) &&
              ReadString(item, "cron", &s.cron, true) && ReadInt(item, "every", &s.every, true) &&
              ReadString(item, "workflow", &s.workflow) &&
              ReadString(item, "script_path", &s.script_path) &&
              ReadString(item, "script_sha256", &s.script_sha256) &&
              ReadInt(item, "node_count", &node_count) &&
              ReadInt(item, "next_tick", &s.next_tick) &&
              ReadString(item, "script_text", &s.script_text);
    auto params = item.FindMember("params");
    if (!ok || params == item.MemberEnd() || !params->value.IsObject()) {
      return Malformed("schedule " + (s.key.empty() ? std::string("?") : s.key) +
                       " lacks a field or has one of the wrong type");
    }
    if (s.cron.empty() == (s.every <= 0)) {
      return Malformed("schedule " + s.key + " needs exactly one of cron and every");
    }
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    params->value.Accept(writer);
    s.params_json.assign(buffer.GetString(), buffer.GetSize());
    s.index = static_cast<int>(index);
    s.node_count = static_cast<int>(node_count);
  }
  for (const rapidjson::Value& item : errors->value.GetArray()) {
    ScheduleFileError& e = set.errors.emplace_back();
    if (!item.IsObject() || !ReadString(item, "file", &e.file) ||
        !ReadString(item, "error", &e.error)) {
      return Malformed("an error entry lacks 'file' or 'error'");
    }
  }
  return set;
}

}  // namespace keel
