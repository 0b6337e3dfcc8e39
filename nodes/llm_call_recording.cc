#include "nodes/llm_call_recording.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cstddef>
#include <utility>
#include <string_view>
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
// Serializing again after a round of cuts: escapes make the JSON longer than
// the raw bytes counted, so a few rounds may be needed.
constexpr int kRounds = 6;

// `text` made safe to record: the secret replaced, invalid UTF-8 repaired.
std::string Clean(std::string_view text, const std::string& secret) {
  std::string out(text);
  if (!secret.empty() && out.find(secret) != std::string::npos) out = Redact(std::move(out), secret);
  if (!IsUtf8(out)) out = ReplaceInvalidUtf8(out);
  return out;
}

void SetText(Value* v, std::string_view text, Allocator& alloc, const std::string& secret) {
  std::string clean = Clean(text, secret);
  v->SetString(clean.data(), static_cast<rapidjson::SizeType>(clean.size()), alloc);
}

// A copy of `from` with every string (keys too) cleaned.
Value CleanCopy(const Value& from, Allocator& alloc, const std::string& secret) {
  Value out;
  if (from.IsString()) {
    SetText(&out, std::string_view(from.GetString(), from.GetStringLength()), alloc, secret);
  } else if (from.IsArray()) {
    out.SetArray();
    for (const Value& item : from.GetArray()) out.PushBack(CleanCopy(item, alloc, secret), alloc);
  } else if (from.IsObject()) {
    out.SetObject();
    for (const auto& m : from.GetObject()) {
      out.AddMember(CleanCopy(m.name, alloc, secret), CleanCopy(m.value, alloc, secret), alloc);
    }
  } else {
    out.CopyFrom(from, alloc);
  }
  return out;
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

// An OpenAI-shaped tool call {"id", "function": {"name", "arguments"}} as
// {"id", "name", "arguments"}; arguments that are not a string as JSON text.
Value RecordedToolCall(const Value& call, Allocator& alloc, const std::string& secret) {
  const Value* fn = wire::Member(call, "function");
  const Value* args = fn != nullptr ? wire::Member(*fn, "arguments") : nullptr;
  std::string args_text;
  if (args != nullptr) args_text = args->IsString() ? std::string(StringOf(args)) : wire::Serialize(*args);
  return ToolCallValue(StringOf(wire::Member(call, "id")),
                       StringOf(fn != nullptr ? wire::Member(*fn, "name") : nullptr), args_text,
                       alloc, secret);
}

// One message as sent: role, content, tool_calls, tool_call_id.
Value RecordedMessage(const Value& m, Allocator& alloc, const std::string& secret) {
  Value out(rapidjson::kObjectType);
  if (!m.IsObject()) {
    out.AddMember("content", CleanCopy(m, alloc, secret), alloc);
    return out;
  }
  for (const char* field : {"role", "content"}) {
    if (const Value* v = wire::Member(m, field)) {
      out.AddMember(rapidjson::StringRef(field), CleanCopy(*v, alloc, secret), alloc);
    }
  }
  if (const Value* calls = wire::Member(m, "tool_calls"); calls != nullptr && calls->IsArray()) {
    Value list(rapidjson::kArrayType);
    for (const Value& call : calls->GetArray()) {
      list.PushBack(RecordedToolCall(call, alloc, secret), alloc);
    }
    out.AddMember("tool_calls", list, alloc);
  }
  if (const Value* id = wire::Member(m, "tool_call_id")) {
    out.AddMember("tool_call_id", CleanCopy(*id, alloc, secret), alloc);
  }
  return out;
}

// A string that may be cut: where it is and its whole text.
struct Piece {
  Value* value;
  std::string text;
};

void CollectStrings(Value* v, std::vector<Piece>* pieces) {
  if (v->IsString()) {
    if (v->GetStringLength() > kShort) pieces->push_back({v, std::string(v->GetString(), v->GetStringLength())});
  } else if (v->IsArray()) {
    for (Value& item : v->GetArray()) CollectStrings(&item, pieces);
  } else if (v->IsObject()) {
    for (auto& m : v->GetObject()) CollectStrings(&m.value, pieces);
  }
}

// The first `keep` bytes of `text`, not splitting a UTF-8 sequence, and the
// marker saying how much was cut.
std::string Cut(const std::string& text, size_t keep) {
  while (keep > 0 && keep < text.size() && (static_cast<unsigned char>(text[keep]) & 0xC0) == 0x80) {
    --keep;
  }
  return text.substr(0, keep) + "\xE2\x80\xA6[" + std::to_string(text.size() - keep) + " bytes cut]";
}

// Cuts pieces, in order, keeping at least `floor` bytes of each, until the
// document fits in `cap` bytes (with room for the marks). Returns whether it fits.
bool CutPieces(Value* doc, std::vector<Piece>* pieces, size_t floor, size_t cap, Allocator& alloc) {
  for (int round = 0; round < kRounds; ++round) {
    size_t size = wire::Serialize(*doc).size() + kMarkRoom;
    if (size <= cap) return true;
    size_t excess = size - cap;
    bool cut_any = false;
    for (Piece& piece : *pieces) {
      if (excess == 0) break;
      size_t now = piece.value->GetStringLength();
      if (now <= floor) continue;
      // The marker costs about 20 bytes: cut that much more.
      size_t want = excess + 24;
      size_t keep = now > want + floor ? now - want : floor;
      keep = std::min(keep, piece.text.size());
      std::string cut = Cut(piece.text, keep);
      if (cut.size() >= now) continue;
      excess -= std::min(excess, now - cut.size());
      piece.value->SetString(cut.data(), static_cast<rapidjson::SizeType>(cut.size()), alloc);
      cut_any = true;
    }
    if (!cut_any) break;
  }
  return wire::Serialize(*doc).size() + kMarkRoom <= cap;
}

// `doc` (an object) as JSON of at most `cap` bytes, cut as the header says.
// `pieces` are its cuttable strings in the order they are cut, those from
// `kept` on belonging to the message kept until last (index `keep_message`
// of `messages`; -1: none); `messages` is null for a reply.
std::string Fit(JsonDocument* doc, std::vector<Piece> pieces, size_t kept, Value* messages,
                int keep_message, size_t cap) {
  std::string whole = wire::Serialize(*doc);
  if (whole.size() <= cap) return whole;
  auto& alloc = doc->GetAllocator();
  const size_t original = whole.size();
  std::vector<Piece> last(pieces.begin() + static_cast<std::ptrdiff_t>(kept), pieces.end());
  bool fits = CutPieces(doc, &pieces, kKeep, cap, alloc);
  pieces.resize(kept);
  fits = fits || CutPieces(doc, &pieces, 0, cap, alloc);
  int omitted = 0;
  if (!fits && messages != nullptr && messages->IsArray()) {
    // The oldest messages go; the kept one stays. Erasing moves the array's
    // elements but not the members inside them, so `last` stays valid.
    pieces.clear();
    while (!fits && messages->Size() > (keep_message >= 0 ? 1u : 0u)) {
      size_t drop = keep_message >= 0 && omitted >= keep_message ? 1 : 0;
      messages->Erase(messages->Begin() + drop);
      ++omitted;
      fits = wire::Serialize(*doc).size() + kMarkRoom <= cap;
    }
  }
  fits = fits || CutPieces(doc, &last, 0, cap, alloc);
  if (!fits) doc->SetObject();  // only the marks remain
  if (omitted > 0 && !doc->HasMember("omitted_messages")) {
    doc->AddMember("omitted_messages", omitted, alloc);
  }
  doc->AddMember("truncated", true, alloc);
  doc->AddMember("original_bytes", static_cast<uint64_t>(original), alloc);
  return wire::Serialize(*doc);
}

}  // namespace

std::string RecordedRequest(const ChatRequest& request, size_t cap, const std::string& secret) {
  JsonDocument doc;
  doc.SetObject();
  auto& alloc = doc.GetAllocator();
  if (!request.system.empty()) {
    Value system;
    SetText(&system, request.system, alloc, secret);
    doc.AddMember("system", system, alloc);
  }
  Value messages(rapidjson::kArrayType);
  {
    JsonDocument sent;
    sent.Parse(request.messages_json.c_str(), request.messages_json.size());
    if (!sent.HasParseError() && sent.IsArray()) {
      for (const Value& m : sent.GetArray()) messages.PushBack(RecordedMessage(m, alloc, secret), alloc);
    }
  }
  doc.AddMember("messages", messages, alloc);
  Value tools(rapidjson::kArrayType);
  for (const ToolSpec& tool : request.tools) {
    Value name;
    SetText(&name, tool.name, alloc, secret);
    tools.PushBack(name, alloc);
  }
  doc.AddMember("tools", tools, alloc);

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
  return Fit(&doc, std::move(pieces), kept, &list, last_user, cap);
}

std::string RecordedReply(const ChatResponse& response, size_t cap, const std::string& secret) {
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
  std::vector<Piece> pieces;
  CollectStrings(&doc, &pieces);
  size_t kept = pieces.size();
  return Fit(&doc, std::move(pieces), kept, nullptr, -1, cap);
}

}  // namespace keel
