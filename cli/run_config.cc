#include "cli/run_config.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <map>

namespace keel::cli {
namespace {

Status Bad(const std::string& what) {
  return Status::Error(ErrorKind::kPermanent, "the run's recorded configuration " + what);
}

std::vector<std::string> ProviderList(const std::map<std::string, std::string>& urls) {
  std::vector<std::string> list;
  for (const auto& [name, url] : urls) list.push_back(name + "=" + url);
  return list;
}

}  // namespace

RunConfig ConfigFromArgs(const LlmArgs& llm, int max_inflight) {
  RunConfig config;
  config.llm = llm;
  config.llm.providers = ProviderList(ProviderUrls(llm.providers));
  config.max_inflight = max_inflight;
  return config;
}

std::string ConfigJson(const RunConfig& config) {
  // Provider names and URLs were checked (CheckProviderUrl): ASCII only.
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  const auto urls = ProviderUrls(config.llm.providers);
  if (!urls.empty()) {
    w.Key("providers");
    w.StartObject();
    for (const auto& [name, url] : urls) {
      w.Key(name.c_str(), static_cast<rapidjson::SizeType>(name.size()));
      w.String(url.c_str(), static_cast<rapidjson::SizeType>(url.size()));
    }
    w.EndObject();
  }
  if (config.llm.max_tokens > 0) {
    w.Key("max_tokens");
    w.Int64(config.llm.max_tokens);
  }
  if (config.llm.max_cost > 0) {
    w.Key("max_cost");
    w.Double(config.llm.max_cost);
  }
  if (config.max_inflight > 0) {
    w.Key("max_inflight");
    w.Int(config.max_inflight);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<RunConfig> ParseConfigJson(const std::string& json) {
  rapidjson::Document doc;
  if (doc.Parse(json.c_str(), json.size()).HasParseError() || !doc.IsObject()) {
    return Bad("is not a JSON object: " + json);
  }
  RunConfig config;
  for (const auto& member : doc.GetObject()) {
    const std::string key(member.name.GetString(), member.name.GetStringLength());
    const rapidjson::Value& value = member.value;
    if (key == "providers") {
      if (!value.IsObject()) return Bad("has providers that are not an object");
      for (const auto& provider : value.GetObject()) {
        if (!provider.value.IsString()) return Bad("has a provider URL that is not a string");
        config.llm.providers.push_back(std::string(provider.name.GetString()) + "=" +
                                       provider.value.GetString());
      }
    } else if (key == "max_tokens") {
      if (!value.IsInt64() || value.GetInt64() < 1) return Bad("has a bad max_tokens");
      config.llm.max_tokens = value.GetInt64();
    } else if (key == "max_cost") {
      if (!value.IsNumber() || value.GetDouble() <= 0) return Bad("has a bad max_cost");
      config.llm.max_cost = value.GetDouble();
    } else if (key == "max_inflight") {
      if (!value.IsInt() || value.GetInt() < 1) return Bad("has a bad max_inflight");
      config.max_inflight = value.GetInt();
    }
    // Other keys come from a newer keel: ignored.
  }
  return config;
}

RunConfig OverrideConfig(const RunConfig& recorded, const LlmArgs& llm, int max_inflight) {
  RunConfig config = recorded;
  std::vector<std::string> providers = recorded.llm.providers;
  providers.insert(providers.end(), llm.providers.begin(), llm.providers.end());
  config.llm.providers = ProviderList(ProviderUrls(providers));
  if (llm.max_tokens > 0) config.llm.max_tokens = llm.max_tokens;
  if (llm.max_cost > 0) config.llm.max_cost = llm.max_cost;
  if (max_inflight > 0) config.max_inflight = max_inflight;
  return config;
}

}  // namespace keel::cli
