#include "nodes/prompt_template.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>

#include "nodes/json_document.h"
#include "nodes/trim.h"

namespace keel {
namespace {

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    parts.push_back(path.substr(start, dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

// Follows `path` from index `from` inside `value`; null when a segment is missing.
const rapidjson::Value* Follow(const rapidjson::Value* value, const std::vector<std::string>& path,
                               size_t from, std::string* missing) {
  for (size_t i = from; i < path.size(); ++i) {
    const std::string& seg = path[i];
    if (value->IsObject()) {
      auto it = value->FindMember(seg.c_str());
      if (it == value->MemberEnd()) {
        *missing = "no field '" + seg + "'";
        return nullptr;
      }
      value = &it->value;
    } else if (value->IsArray()) {
      char* end = nullptr;
      unsigned long index = std::strtoul(seg.c_str(), &end, 10);
      if (seg.empty() || *end != 0 || index >= value->Size()) {
        *missing = "no item '" + seg + "' in a list of " + std::to_string(value->Size());
        return nullptr;
      }
      value = &(*value)[static_cast<rapidjson::SizeType>(index)];
    } else {
      *missing = "'" + seg + "' looked up in a value that is neither an object nor a list";
      return nullptr;
    }
  }
  return value;
}

void Append(const rapidjson::Value& value, std::string* out) {
  if (value.IsString()) {
    out->append(value.GetString(), value.GetStringLength());
    return;
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buf);
  value.Accept(writer);
  out->append(buf.GetString(), buf.GetSize());
}

}  // namespace

Result<PromptTemplate> PromptTemplate::Parse(const std::string& text) {
  PromptTemplate t;
  size_t pos = 0;
  while (true) {
    size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      t.pieces_.push_back(text.substr(pos));
      return t;
    }
    size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) {
      return Status::Error(ErrorKind::kPermanent,
                           "'{{' at offset " + std::to_string(open) + " is never closed by '}}'");
    }
    Field field;
    field.text = TrimBlanks(std::string_view(text).substr(open + 2, close - open - 2));
    if (field.text.empty()) return Status::Error(ErrorKind::kPermanent, "empty field '{{}}'");
    field.path = Split(field.text);
    for (const std::string& seg : field.path) {
      if (seg.empty()) {
        return Status::Error(ErrorKind::kPermanent,
                             "field {{" + field.text + "}} has an empty segment");
      }
    }
    bool item_field =
        field.path[0] == "item" || (field.path[0] == "index" && field.path.size() == 1);
    if (!item_field &&
        ((field.path[0] != "params" && field.path[0] != "deps") || field.path.size() < 2)) {
      return Status::Error(ErrorKind::kPermanent,
                           "field {{" + field.text +
                               "}} must start with params.NAME or deps.NODE (or, in a keel.map's node, "
                               "be item, item.FIELD or index)");
    }
    t.pieces_.push_back(text.substr(pos, open - pos));
    t.fields_.push_back(std::move(field));
    pos = close + 2;
  }
}

Result<std::string> PromptTemplate::Render(
    const JsonText& params, const std::vector<std::pair<std::string, JsonText>>& deps,
    const JsonText& item, int index) const {
  std::string out = pieces_.empty() ? std::string() : pieces_[0];
  for (size_t i = 0; i < fields_.size(); ++i) {
    const Field& field = fields_[i];
    const std::string* source = nullptr;
    std::string index_text;
    size_t from = field.path[0] == "params" ? 1 : 2;
    if ((field.path[0] == "index" || field.path[0] == "item") && index <= 0) {
      return Status::Error(ErrorKind::kPermanent,
                           "{{" + field.text + "}} is only set in the items of a keel.map");
    }
    if (field.path[0] == "index") {
      index_text = std::to_string(index);
      source = &index_text;
      from = 1;
    } else if (field.path[0] == "item") {
      source = item.get();
      from = 1;
    } else if (field.path[0] == "params") {
      source = params.get();
    } else {
      for (const auto& [name, output] : deps) {
        if (name == field.path[1]) source = output.get();
      }
    }
    if (source == nullptr) {
      // A dependency that was skipped, or whose failure a join absorbed.
      out += pieces_[i + 1];
      continue;
    }
    JsonDocument doc;
    doc.Parse(source->c_str(), source->size());
    std::string missing;
    const rapidjson::Value* value =
        doc.HasParseError() ? nullptr
                            : Follow(&doc, field.path, from, &missing);
    if (value == nullptr) {
      return Status::Error(ErrorKind::kPermanent, "{{" + field.text + "}}: " + missing);
    }
    Append(*value, &out);
    out += pieces_[i + 1];
  }
  return out;
}

}  // namespace keel
