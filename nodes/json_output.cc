// CheckJsonOutput (declared in nodes/llm_client.h): the check a reply must
// pass when a call asked for JSON or schema-shaped output.

#include <rapidjson/schema.h>

#include <string_view>

#include "nodes/json_document.h"
#include "nodes/llm_client.h"
#include "nodes/trim.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

// `text` without surrounding whitespace and without a ```json ... ``` (or
// ``` ... ```) fence around it.
std::string_view Unfence(std::string_view text) {
  text = TrimBlanks(text);
  constexpr std::string_view kFence = "```";
  if (text.size() < 2 * kFence.size() || text.substr(0, kFence.size()) != kFence ||
      text.substr(text.size() - kFence.size()) != kFence) {
    return text;
  }
  std::string_view inner = text.substr(kFence.size(), text.size() - 2 * kFence.size());
  size_t newline = inner.find('\n');
  std::string_view tag = TrimBlanks(inner.substr(0, newline));
  if (tag.empty() || tag == "json" || tag == "JSON") {
    inner = newline == std::string_view::npos ? std::string_view() : inner.substr(newline + 1);
  }
  return TrimBlanks(inner);
}

std::string PointerText(const rapidjson::Pointer& pointer) {
  rapidjson::StringBuffer buf;
  pointer.Stringify(buf);
  std::string text(buf.GetString(), buf.GetSize());
  return text.empty() ? "the top level" : text;
}

Status Validate(const rapidjson::Document& doc, const std::string& schema_json) {
  JsonDocument schema;
  schema.Parse(schema_json.c_str(), schema_json.size());
  if (schema.HasParseError()) {
    return Status::Error(ErrorKind::kPermanent,
                         "output schema is not valid JSON: " + wire::ParseErrorText(schema));
  }
  rapidjson::SchemaDocument schema_doc(schema);
  rapidjson::SchemaValidator validator(schema_doc);
  if (doc.Accept(validator)) return Status::Ok();
  return Status::Error(ErrorKind::kTransient,
                       std::string("output does not match the schema: ") +
                           validator.GetInvalidSchemaKeyword() + " at " +
                           PointerText(validator.GetInvalidDocumentPointer()));
}

}  // namespace

Result<std::string> CheckJsonOutput(const std::string& text, const std::string& schema_json) {
  std::string_view json = Unfence(text);
  JsonDocument doc;
  if (Status parsed = ParseUntrustedJson(json, &doc); !parsed.ok()) {
    return Status::Error(ErrorKind::kTransient, "output is not valid JSON: " + parsed.message());
  }
  if (!schema_json.empty()) {
    if (Status s = Validate(doc, schema_json); !s.ok()) return s;
  }
  return wire::Serialize(doc);
}

}  // namespace keel
