#include "nodes/untrusted_json.h"

#include <rapidjson/encodedstream.h>
#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <string>

namespace keel {
namespace {

using rapidjson::SizeType;

constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag;

// Forwards a Reader's events to the document being built, failing the parse
// when arrays and objects nest deeper than kMaxJsonDepth.
class DepthLimit {
 public:
  explicit DepthLimit(rapidjson::Document& doc) : doc_(doc) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, SizeType n, bool copy) { return doc_.RawNumber(s, n, copy); }
  bool String(const char* s, SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool Key(const char* s, SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool StartObject() { return Enter() && doc_.StartObject(); }
  bool EndObject(SizeType n) {
    --depth_;
    return doc_.EndObject(n);
  }
  bool StartArray() { return Enter() && doc_.StartArray(); }
  bool EndArray(SizeType n) {
    --depth_;
    return doc_.EndArray(n);
  }

  bool too_deep() const { return too_deep_; }

 private:
  bool Enter() {
    too_deep_ = ++depth_ > kMaxJsonDepth;
    return !too_deep_;
  }

  rapidjson::Document& doc_;
  int depth_ = 0;
  bool too_deep_ = false;
};

// Runs the parse for Document::Populate, which keeps the values it builds.
struct Parse {
  std::string_view text;
  rapidjson::ParseResult result;
  bool too_deep = false;

  bool operator()(rapidjson::Document& doc) {
    rapidjson::MemoryStream bytes(text.data(), text.size());
    rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> in(bytes);
    DepthLimit limit(doc);
    rapidjson::Reader reader;
    result = reader.Parse<kFlags>(in, limit);
    if (!result.IsError() && bytes.Tell() < text.size()) {
      // RapidJSON takes a NUL byte for the end of the text: "1\0x" is not JSON.
      result.Set(rapidjson::kParseErrorDocumentRootNotSingular, bytes.Tell());
    }
    too_deep = limit.too_deep();
    return !result.IsError();
  }
};

}  // namespace

Status ParseUntrustedJson(std::string_view text, rapidjson::Document* doc) {
  Parse parse{text, {}};
  doc->SetNull();
  doc->Populate(parse);
  if (!parse.result.IsError()) return Status::Ok();
  std::string why = parse.too_deep
                        ? "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels"
                        : rapidjson::GetParseError_En(parse.result.Code());
  if (!why.empty() && why.back() == '.') why.pop_back();
  return Status::Error(
      ErrorKind::kTransient,
      "invalid JSON at offset " + std::to_string(parse.result.Offset()) + ": " + why);
}

}  // namespace keel
