#include "cli/params.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "engine/did_you_mean.h"
#include "engine/utf8.h"

namespace keel::cli {
namespace {

// `text` parsed as one complete JSON value into `doc`'s allocator, or false.
bool ParseJsonValue(const std::string& text, rapidjson::Document* doc) {
  doc->Parse(text.c_str(), text.size());
  return !doc->HasParseError();
}

}  // namespace

Result<JsonText> ApplyParamOverrides(const JsonText& defaults,
                                     const std::vector<std::string>& overrides) {
  rapidjson::Document params;
  params.Parse(defaults ? defaults->c_str() : "{}");
  if (params.HasParseError() || !params.IsObject()) params.SetObject();
  auto& alloc = params.GetAllocator();
  std::vector<std::string> declared;
  for (const auto& m : params.GetObject()) declared.emplace_back(m.name.GetString());

  for (const std::string& arg : overrides) {
    size_t eq = arg.find('=');
    if (eq == std::string::npos) {
      return Status::Error(ErrorKind::kPermanent,
                           "-p '" + arg + "': expected key=value (for example -p topic=tea)");
    }
    std::string key = arg.substr(0, eq);
    std::string text = arg.substr(eq + 1);
    if (key.empty()) {
      return Status::Error(ErrorKind::kPermanent, "-p '" + arg + "': the key before '=' is empty");
    }
    if (!IsUtf8(key)) {
      return Status::Error(ErrorKind::kPermanent,
                           "-p '" + ReplaceInvalidUtf8(key) + "': the key is not valid UTF-8 text");
    }
    if (!IsUtf8(text)) {
      return Status::Error(ErrorKind::kPermanent, "-p " + key +
                                                      ": the value is not valid UTF-8 text "
                                                      "(invalid bytes shown as \ufffd): '" +
                                                      ReplaceInvalidUtf8(text) + "'");
    }

    auto existing = params.FindMember(key.c_str());
    if (defaults && existing == params.MemberEnd()) {
      std::string known;
      for (const std::string& name : declared) known += (known.empty() ? "" : ", ") + name;
      return Status::Error(
          ErrorKind::kPermanent,
          "-p " + key + ": the workflow declares no parameter '" + key + "'" +
              DidYouMean(key, declared) +
              (known.empty() ? "; it declares none (add `params = { " + key + " = ... }`)"
                             : "; it declares " + known));
    }
    bool keep_string = existing != params.MemberEnd() && existing->value.IsString();
    rapidjson::Value value;
    rapidjson::Document parsed;
    if (!keep_string && ParseJsonValue(text, &parsed)) {
      value.CopyFrom(parsed, alloc);
    } else {
      value.SetString(text.c_str(), static_cast<rapidjson::SizeType>(text.size()), alloc);
    }

    if (existing != params.MemberEnd()) {
      existing->value = value;
    } else {
      params.AddMember(rapidjson::Value(key.c_str(), alloc), value, alloc);
    }
  }

  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  params.Accept(writer);
  return MakeJson(std::string(buffer.GetString(), buffer.GetSize()));
}

}  // namespace keel::cli
