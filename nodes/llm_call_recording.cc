#include "nodes/llm_call_recording.h"

#include <rapidjson/document.h>
#include <string.h>

#include <algorithm>
#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/utf8.h"
#include "nodes/json_document.h"
#include "nodes/provider.h"
#include "nodes/wire_json.h"

namespace keel {
namespace {

using rapidjson::Value;
using Allocator = rapidjson::Document::AllocatorType;

// Strings at most this long are never cut; cutting keeps at least kKeep
// bytes of a string before it cuts any string to nothing.
constexpr size_t kShort = 64;
constexpr size_t kKeep = 256;
// Room for ,"truncated":true,"original_bytes":N and ,"omitted_messages":N.
constexpr size_t kMarkRoom = 96;
// Longest "…[N bytes cut]" marker (N below 10^11).
constexpr size_t kMarkerBytes = 32;

bool IsAscii(std::string_view text) {
  unsigned char seen = 0;
  for (unsigned char c : text) seen |= c;  // no early exit: the loop vectorizes
  return (seen & 0x80) == 0;
}

// Whether `text` holds `secret` (not empty): glibc's memmem (a two-way
// search), not find, which compares at every occurrence of the first byte.
bool Contains(std::string_view text, const std::string& secret) {
  return memmem(text.data(), text.size(), secret.data(), secret.size()) != nullptr;
}

// Makes the string `v` safe to record: the secret replaced, invalid UTF-8
// repaired. Most strings need neither and are left as they are.
void CleanString(Value* v, Allocator& alloc, const std::string& secret) {
  std::string_view text(v->GetString(), v->GetStringLength());
  bool has_secret = !secret.empty() && Contains(text, secret);
  bool valid = IsAscii(text) || IsUtf8(text);
  if (!has_secret && valid) return;
  std::string clean(text);
  if (has_secret) clean = Redact(std::move(clean), secret);
  if (!valid) clean = ReplaceInvalidUtf8(clean);
  v->SetString(clean.data(), static_cast<rapidjson::SizeType>(clean.size()), alloc);
}

// `text` made safe to record, as CleanString does.
std::string Clean(std::string_view text, const std::string& secret) {
  std::string clean(text);
  if (!secret.empty() && Contains(clean, secret)) {
    clean = Redact(std::move(clean), secret);
  }
  if (!(IsAscii(clean) || IsUtf8(clean))) clean = ReplaceInvalidUtf8(clean);
  return clean;
}

void SetText(Value* v, std::string_view text, Allocator& alloc, const std::string& secret) {
  v->SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), alloc);
  CleanString(v, alloc, secret);
}

// Cleans every string in `v` (keys too), in place.
void CleanAll(Value* v, Allocator& alloc, const std::string& secret) {
  if (v->IsString()) {
    CleanString(v, alloc, secret);
  } else if (v->IsArray()) {
    for (Value& item : v->GetArray()) CleanAll(&item, alloc, secret);
  } else if (v->IsObject()) {
    for (auto& m : v->GetObject()) {
      CleanString(&m.name, alloc, secret);
      CleanAll(&m.value, alloc, secret);
    }
  }
}

Value ToolCallValue(std::string_view id, std::string_view name, std::string_view arguments,
                    Allocator& alloc, const std::string& secret) {
  Value call(rapidjson::kObjectType);
  Value v;
  SetText(&v, id, alloc, secret);
  call.AddMember("id", v, alloc);
  SetText(&v, name, alloc, secret);
  call.AddMember("name", v, alloc);
  SetText(&v, arguments, alloc, secret);
  call.AddMember("arguments", v, alloc);
  return call;
}

std::string_view StringOf(const Value* v) {
  return v != nullptr && v->IsString() ? std::string_view(v->GetString(), v->GetStringLength())
                                       : std::string_view();
}

// Whether `text` may go into a record as it is: valid UTF-8 without the
// secret. A secret that JSON would escape is looked for in the parsed
// strings instead (false here).
bool Recordable(std::string_view text, const std::string& secret) {
  if (!(IsAscii(text) || IsUtf8(text))) return false;
  if (secret.empty()) return true;
  for (char c : secret) {
    if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
  }
  return !Contains(text, secret);
}

// Writes `text` as a JSON string, made safe to record.
void WriteClean(wire::Writer& w, std::string_view text, const std::string& secret) {
  if (Recordable(text, secret)) return wire::String(w, text);
  wire::String(w, Clean(text, secret));
}

// A string that may be cut: where it is, its whole text and how many bytes
// of it are kept.
struct Piece {
  Value* value;
  std::string text;
  size_t kept;
};

void CollectStrings(Value* v, std::vector<Piece>* pieces) {
  if (v->IsString()) {
    if (v->GetStringLength() > kShort) {
      std::string text(v->GetString(), v->GetStringLength());
      size_t size = text.size();
      pieces->push_back({v, std::move(text), size});
    }
  } else if (v->IsArray()) {
    for (Value& item : v->GetArray()) CollectStrings(&item, pieces);
  } else if (v->IsObject()) {
    for (auto& m : v->GetObject()) CollectStrings(&m.value, pieces);
  }
}

// The bytes `text` takes as a JSON string written by RapidJSON's Writer
// (quotes included; only '"', '\\' and control characters are escaped).
size_t JsonStringSize(std::string_view text) {
  size_t size = text.size() + 2;
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      size += 1;
    } else if (c < 0x20) {
      size += c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t' ? 1 : 5;
    }
  }
  return size;
}

// The first `keep` bytes of `text`, not splitting a UTF-8 sequence, and the
// marker saying how much was cut.
std::string Cut(const std::string& text, size_t keep) {
  while (keep > 0 && keep < text.size() &&
         (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) {
    --keep;
  }
  return text.substr(0, keep) + "\xE2\x80\xA6[" + std::to_string(text.size() - keep) +
         " bytes cut]";
}

// Cuts pieces, in order, keeping at least `floor` bytes of each, until
// `*size` (the document's JSON size, kept up to date) leaves room for the
// marks within `cap`. Returns whether it does.
bool CutPieces(std::vector<Piece>* pieces, size_t floor, size_t cap, size_t* size,
               Allocator& alloc) {
  for (Piece& piece : *pieces) {
    if (*size + kMarkRoom <= cap) return true;
    size_t excess = *size + kMarkRoom - cap;
    // Every raw byte cut takes at least one byte off the JSON.
    size_t want = excess + kMarkerBytes;
    size_t keep = piece.kept > want + floor ? piece.kept - want : floor;
    if (keep >= piece.kept) continue;
    std::string cut = Cut(piece.text, keep);
    size_t before =
        JsonStringSize(std::string_view(piece.value->GetString(), piece.value->GetStringLength()));
    size_t after = JsonStringSize(cut);
    if (after >= before) continue;
    *size -= before - after;
    piece.kept = keep;
    piece.value->SetString(cut.data(), static_cast<rapidjson::SizeType>(cut.size()), alloc);
  }
  return *size + kMarkRoom <= cap;
}

// `doc` (an object, `original` bytes of JSON, over `cap`) as JSON of at
// most `cap` bytes, cut as the header says. `pieces` are its cuttable
// strings in the order they are cut, those from `kept` on belonging to the
// message kept until last (index `keep_message` of `messages`; -1: none);
// `messages` is null for a reply.
std::string Fit(JsonDocument* doc, size_t original, std::vector<Piece> pieces, size_t kept,
                Value* messages, int keep_message, size_t cap) {
  auto& alloc = doc->GetAllocator();
  size_t size = original;
  std::vector<Piece> last(pieces.begin() + static_cast<std::ptrdiff_t>(kept), pieces.end());
  bool fits = CutPieces(&pieces, kKeep, cap, &size, alloc);
  pieces.resize(kept);
  fits = fits || CutPieces(&pieces, 0, cap, &size, alloc);
  int omitted = 0;
  if (!fits && messages != nullptr && messages->IsArray()) {
    // The oldest messages go; the kept one stays. Erasing moves the array's
    // elements but not the members inside them, so `last` stays valid.
    pieces.clear();
    while (size + kMarkRoom > cap && messages->Size() > (keep_message >= 0 ? 1u : 0u)) {
      size_t drop = keep_message >= 0 && omitted >= keep_message ? 1 : 0;
      size_t gone = wire::Serialize((*messages)[static_cast<rapidjson::SizeType>(drop)]).size();
      size -= std::min(size, gone + (messages->Size() > 1 ? 1 : 0));  // and its comma
      messages->Erase(messages->Begin() + drop);
      ++omitted;
    }
    fits = size + kMarkRoom <= cap;
  }
  fits = fits || CutPieces(&last, 0, cap, &size, alloc);
  if (!fits) doc->SetObject();  // only the marks remain
  if (omitted > 0 && doc->IsObject() && !doc->HasMember("omitted_messages")) {
    doc->AddMember("omitted_messages", omitted, alloc);
  }
  doc->AddMember("truncated", true, alloc);
  doc->AddMember("original_bytes", static_cast<uint64_t>(original), alloc);
  std::string text = wire::Serialize(*doc);
  if (text.size() > cap) {  // a miscount: never over the cap
    doc->SetObject();
    doc->AddMember("truncated", true, alloc);
    doc->AddMember("original_bytes", static_cast<uint64_t>(original), alloc);
    text = wire::Serialize(*doc);
  }
  return text;
}

}  // namespace

std::string RecordedRequest(const ChatRequest& request, size_t cap, const std::string& secret,
                            bool checked) {
  if (checked && Recordable(request.messages_json, secret)) {
    // The usual case: the messages as they are, copied, not parsed.
    rapidjson::StringBuffer head;
    wire::Writer w(head);
    w.StartObject();
    if (!request.system.empty()) {
      w.Key("system");
      WriteClean(w, request.system, secret);
    }
    w.Key("tools");
    w.StartArray();
    for (const ToolSpec& tool : request.tools) WriteClean(w, tool.name, secret);
    w.EndArray();
    w.EndObject();
    std::string_view written(head.GetString(), head.GetSize());  // {...,"tools":[...]}
    constexpr std::string_view kMessages = ",\"messages\":";
    if (written.size() + kMessages.size() + request.messages_json.size() <= cap) {
      std::string out;
      out.reserve(written.size() + kMessages.size() + request.messages_json.size());
      out.append(written.substr(0, written.size() - 1))
          .append(kMessages)
          .append(request.messages_json)
          .append(1, '}');
      return out;
    }
  }
  JsonDocument doc;
  doc.SetObject();
  auto& alloc = doc.GetAllocator();
  if (!request.system.empty()) {
    Value system;
    SetText(&system, request.system, alloc, secret);
    doc.AddMember("system", system, alloc);
  }
  Value tools(rapidjson::kArrayType);
  for (const ToolSpec& tool : request.tools) {
    Value name;
    SetText(&name, tool.name, alloc, secret);
    tools.PushBack(name, alloc);
  }
  doc.AddMember("tools", tools, alloc);
  Value messages(rapidjson::kArrayType);
  {
    // Parsed into the record's pool, so that its strings move, not copy.
    rapidjson::Document sent(&alloc);
    sent.Parse(request.messages_json.c_str(), request.messages_json.size());
    if (!sent.HasParseError() && sent.IsArray()) {
      CleanAll(&sent, alloc, secret);
      for (Value& m : sent.GetArray()) messages.PushBack(m, alloc);
    }
  }
  doc.AddMember("messages", messages, alloc);
  std::string whole = wire::Serialize(doc);
  if (whole.size() <= cap) return whole;

  // Cut order: the system prompt, the messages oldest first, the last user
  // message last.
  Value& list = doc["messages"];
  int last_user = -1;
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    if (StringOf(wire::Member(list[i], "role")) == "user") last_user = static_cast<int>(i);
  }
  std::vector<Piece> pieces;
  if (doc.HasMember("system")) CollectStrings(&doc["system"], &pieces);
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
    if (static_cast<int>(i) != last_user) CollectStrings(&list[i], &pieces);
  }
  size_t kept = pieces.size();
  if (last_user >= 0) CollectStrings(&list[last_user], &pieces);
  return Fit(&doc, whole.size(), std::move(pieces), kept, &list, last_user, cap);
}

std::string RecordedReply(const ChatResponse& response, size_t cap, const std::string& secret) {
  {
    rapidjson::StringBuffer buf;
    wire::Writer w(buf);
    w.StartObject();
    w.Key("content");
    WriteClean(w, response.text, secret);
    w.Key("tool_calls");
    w.StartArray();
    for (const ToolCall& call : response.tool_calls) {
      w.StartObject();
      w.Key("id");
      WriteClean(w, call.id, secret);
      w.Key("name");
      WriteClean(w, call.name, secret);
      w.Key("arguments");
      WriteClean(w, call.arguments_json, secret);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    if (buf.GetSize() <= cap) return std::string(buf.GetString(), buf.GetSize());
  }
  JsonDocument doc;
  doc.SetObject();
  auto& alloc = doc.GetAllocator();
  Value content;
  SetText(&content, response.text, alloc, secret);
  doc.AddMember("content", content, alloc);
  Value calls(rapidjson::kArrayType);
  for (const ToolCall& call : response.tool_calls) {
    calls.PushBack(ToolCallValue(call.id, call.name, call.arguments_json, alloc, secret), alloc);
  }
  doc.AddMember("tool_calls", calls, alloc);
  std::string whole = wire::Serialize(doc);
  std::vector<Piece> pieces;
  CollectStrings(&doc, &pieces);
  size_t kept = pieces.size();
  return Fit(&doc, whole.size(), std::move(pieces), kept, nullptr, -1, cap);
}

}  // namespace keel
