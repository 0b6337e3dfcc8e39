#include "nodes/untrusted_json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cmath>
#include <string>

#include "engine/utf8.h"
#include "nodes/json_number.h"

namespace keel {
namespace {

using rapidjson::SizeType;

// Numbers come as text and are read by ReadJsonNumber (nodes/json_number.h):
// RapidJSON's own reading is inexact, or wrong with full precision.
constexpr unsigned kFlags = rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag |
                            rapidjson::kParseNumbersAsStringsFlag;

// Forwards a Reader's events to the document being built, failing the parse
// when arrays and objects nest deeper than kMaxJsonDepth, when a number is
// too big for a double (RapidJSON makes 1e999 an error but 9e308 infinity),
// and when a string's \u escapes are not valid UTF-8 (a lone surrogate:
// RapidJSON validates the bytes of strings, not what escapes encode).
class DepthLimit {
 public:
  explicit DepthLimit(rapidjson::Document& doc) : doc_(doc) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) {
    if (!std::isfinite(d)) {
      return Refuse(rapidjson::GetParseError_En(rapidjson::kParseErrorNumberTooBig));
    }
    return doc_.Double(d);
  }
  bool RawNumber(const char* s, SizeType n, bool) {
    JsonNumber number = ReadJsonNumber(s, n);
    if (number.kind == JsonNumber::kInt64) return doc_.Int64(number.i);
    if (number.kind == JsonNumber::kUint64) return doc_.Uint64(number.u);
    return Double(number.d);
  }
  bool String(const char* s, SizeType n, bool copy) {
    return Utf8(s, n) && doc_.String(s, n, copy);
  }
  bool Key(const char* s, SizeType n, bool copy) { return Utf8(s, n) && doc_.Key(s, n, copy); }
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

  // Why the handler stopped the parse; "" when it did not.
  const std::string& why() const { return why_; }

 private:
  bool Enter() {
    if (++depth_ <= kMaxJsonDepth) return true;
    return Refuse("nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  bool Utf8(const char* s, SizeType n) {
    return IsUtf8(std::string_view(s, n)) ||
           Refuse("a \\u escape that is not valid UTF-8 (a lone surrogate)");
  }
  bool Refuse(std::string why) {
    why_ = std::move(why);
    return false;
  }

  rapidjson::Document& doc_;
  int depth_ = 0;
  std::string why_;
};

// Runs the parse for Document::Populate, which keeps the values it builds.
struct Parse {
  std::string_view text;  // without its byte order mark
  rapidjson::ParseResult result;
  std::string why;

  bool operator()(rapidjson::Document& doc) {
    rapidjson::MemoryStream bytes(text.data(), text.size());
    DepthLimit limit(doc);
    rapidjson::Reader reader;
    result = reader.Parse<kFlags>(bytes, limit);
    if (!result.IsError() && bytes.Tell() < text.size()) {
      // RapidJSON takes a NUL byte for the end of the text: "1\0x" is not JSON.
      result.Set(rapidjson::kParseErrorDocumentRootNotSingular, bytes.Tell());
    }
    why = limit.why();
    return !result.IsError();
  }
};

}  // namespace

Status ParseUntrustedJson(std::string_view text, rapidjson::Document* doc) {
  // The byte order mark is skipped here: RapidJSON's own skipping takes each
  // of its three bytes on its own, so "\xBF{}" parsed.
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  const size_t bom = text.starts_with(kBom) ? kBom.size() : 0;
  Parse parse{text.substr(bom), {}, {}};
  doc->SetNull();
  doc->Populate(parse);
  if (!parse.result.IsError()) return Status::Ok();
  std::string why = parse.result.Code() == rapidjson::kParseErrorTermination && !parse.why.empty()
                        ? parse.why
                        : rapidjson::GetParseError_En(parse.result.Code());
  if (!why.empty() && why.back() == '.') why.pop_back();
  return Status::Error(
      ErrorKind::kTransient,
      "invalid JSON at offset " + std::to_string(bom + parse.result.Offset()) + ": " + why);
}

}  // namespace keel
