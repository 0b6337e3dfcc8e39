#include "scripts/llm_calls.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>

#include "engine/did_you_mean.h"
#include "engine/event_data.h"
#include "engine/utf8.h"
#include "lua.hpp"
#include "nodes/agent_node.h"
#include "nodes/http_loop.h"
#include "nodes/json_document.h"
#include "nodes/llm_client.h"
#include "nodes/schema_check.h"
#include "nodes/untrusted_json.h"
#include "nodes/wire_json.h"
#include "scripts/active_node.h"
#include "scripts/declarations.h"
#include "scripts/keel_module.h"
#include "scripts/lua_json.h"
#include "scripts/lua_trampoline.h"
#include "scripts/sha256.h"
#include "scripts/wait_results.h"

namespace keel {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

int Raise(lua_State* L, const std::string& message) {
  std::string text = CallerWhere(L) + ": " + message;
  lua_pushlstring(L, text.data(), text.size());
  return kLuaRaise;
}

// A request no retry can fix (a misspelt field, an unknown provider): fails
// the node with kind `permanent`, at the script's line.
int RaisePermanent(lua_State* L, const std::string& message) {
  PushFailure(L, Status::Error(ErrorKind::kPermanent, CallerWhere(L) + ": " + message));
  return kLuaRaise;
}

constexpr std::string_view kLlmFields[] = {"provider",    "model",      "system",
                                           "prompt",      "messages",   "tools",
                                           "temperature", "max_tokens", "output"};
constexpr std::string_view kHttpFields[] = {"url", "method", "body", "headers", "timeout"};

// "" when every key of the table at index 1 is one of `fields`; else what is wrong.
std::string UnknownField(lua_State* L, std::span<const std::string_view> fields) {
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      std::string type = luaL_typename(L, -1);
      lua_pop(L, 1);
      return "fields are named; got a " + type + " key (write { prompt = ... }, not a list)";
    }
    std::string key = lua_tostring(L, -1);
    if (std::find(fields.begin(), fields.end(), key) == fields.end()) {
      lua_pop(L, 1);
      return "unknown field '" + key + "'" + DidYouMean(key, fields);
    }
  }
  return "";
}

// The node execution the call may wait in, or an error message.
ActiveNode* WaitingNode(lua_State* L, const char* what, std::string* error) {
  ActiveNode* active = ActiveNodeOf(L);
  if (active == nullptr || active->context == nullptr) {
    *error = std::string(what) + " can only be used inside a node's function";
  } else if (L != active->coroutine) {
    *error = std::string(what) + " cannot be used inside a coroutine the script created";
  } else if (!lua_isyieldable(L)) {
    *error = std::string(what) + " cannot be used inside a metamethod or a function called from C";
  }
  return error->empty() ? active : nullptr;
}

// t[field] as a string; "" when absent. False (with *error) when it is not a string.
bool StringField(lua_State* L, int t, const char* field, std::string* out, std::string* error) {
  lua_getfield(L, t, field);
  bool ok = true;
  if (lua_type(L, -1) == LUA_TSTRING) {
    *out = lua_tostring(L, -1);
  } else if (!lua_isnil(L, -1)) {
    *error = std::string("'") + field + "' must be a string, got " + luaL_typename(L, -1);
    ok = false;
  }
  lua_pop(L, 1);
  return ok;
}

bool JsonField(lua_State* L, int t, const char* field, std::string* out, std::string* error) {
  lua_getfield(L, t, field);
  bool ok = true;
  if (!lua_isnil(L, -1)) {
    Status status = LuaToJson(L, -1, out);
    if (!status.ok()) {
      *error = std::string("'") + field + "': " + status.message();
      ok = false;
    }
  }
  lua_pop(L, 1);
  return ok;
}

// Reads keel.llm's table argument into a request; "" or what is wrong.
std::string ReadChatRequest(lua_State* L, std::string* provider, ChatRequest* request) {
  std::string error, prompt, output, tools;
  if (!StringField(L, 1, "provider", provider, &error) ||
      !StringField(L, 1, "model", &request->model, &error) ||
      !StringField(L, 1, "system", &request->system, &error) ||
      !StringField(L, 1, "prompt", &prompt, &error) ||
      !JsonField(L, 1, "messages", &request->messages_json, &error) ||
      !JsonField(L, 1, "tools", &tools, &error)) {
    return error;
  }
  if (provider->empty()) return "'provider' is required";
  JsonDocument messages;
  if (request->messages_json.empty()) request->messages_json = "[]";
  if (messages.Parse(request->messages_json.c_str()).HasParseError() || !messages.IsArray()) {
    return "'messages' must be a list of { role = ..., content = ... }";
  }
  if (!prompt.empty()) {
    rapidjson::Value m(rapidjson::kObjectType);
    m.AddMember("role", "user", messages.GetAllocator());
    m.AddMember("content", rapidjson::Value(prompt.c_str(), messages.GetAllocator()),
                messages.GetAllocator());
    messages.PushBack(m, messages.GetAllocator());
  }
  if (messages.Empty()) return "give a 'prompt' or 'messages'";
  request->messages_json = wire::Serialize(messages);
  lua_getfield(L, 1, "temperature");
  if (lua_type(L, -1) == LUA_TNUMBER) request->temperature = lua_tonumber(L, -1);
  lua_getfield(L, 1, "max_tokens");
  if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0) {
    request->max_tokens = static_cast<int>(lua_tointeger(L, -1));
  }
  lua_getfield(L, 1, "output");
  if (lua_type(L, -1) == LUA_TSTRING) {
    output = lua_tostring(L, -1);
    if (output == "json") {
      request->output = OutputMode::kJson;
    } else if (output != "text") {
      return "'output' must be \"text\", \"json\" or a JSON schema table";
    }
  } else if (lua_istable(L, -1)) {
    Status status = LuaToJson(L, -1, &request->schema_json);
    if (!status.ok()) return "'output': " + status.message();
    std::string problem = request->schema_json.front() == '{'
                              ? SchemaProblem(request->schema_json)
                              : "a JSON schema is an object, not a list";
    if (!problem.empty()) return "'output': " + problem;
    request->output = OutputMode::kSchema;
  }
  lua_pop(L, 3);
  if (!tools.empty()) {
    JsonDocument doc;
    doc.Parse(tools.c_str());
    if (!doc.IsArray()) {
      return "'tools' must be a list of { name = ..., description = ..., parameters = ... }";
    }
    for (const auto& t : doc.GetArray()) {
      if (!t.IsObject() || !t.HasMember("name") || !t["name"].IsString()) {
        return "every tool needs a 'name'";
      }
      ToolSpec spec;
      spec.name = t["name"].GetString();
      if (t.HasMember("description") && t["description"].IsString()) {
        spec.description = t["description"].GetString();
      }
      if (t.HasMember("parameters") && t["parameters"].IsObject()) {
        spec.parameters_json = wire::Serialize(t["parameters"]);
      }
      request->tools.push_back(std::move(spec));
    }
  }
  return "";
}

// The table keel.llm returns, as JSON.
std::string ChatResultJson(const ChatResponse& response, const LlmCallRecord& record,
                           const ChatRequest& request) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("text");
  w.String(response.text.c_str(), static_cast<rapidjson::SizeType>(response.text.size()));
  if (request.output != OutputMode::kText) {
    auto json = CheckJsonOutput(response.text, request.schema_json);
    if (json.ok()) {
      w.Key("json");
      w.RawValue(json->c_str(), json->size(), rapidjson::kObjectType);
    }
  }
  w.Key("tool_calls");
  w.StartArray();
  for (const ToolCall& call : response.tool_calls) {
    w.StartObject();
    w.Key("id");
    w.String(call.id.c_str());
    w.Key("name");
    w.String(call.name.c_str());
    JsonDocument args;
    w.Key("arguments");
    if (ParseUntrustedJson(call.arguments_json, &args).ok()) {
      args.Accept(w);
    } else {
      wire::String(w, call.arguments_json);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("message");
  w.RawValue(response.message_json.c_str(), response.message_json.size(), rapidjson::kObjectType);
  w.Key("model");
  w.String(response.model.c_str());
  w.Key("finish_reason");
  w.String(response.finish_reason.c_str());
  w.Key("usage");
  w.StartObject();
  w.Key("prompt_tokens");
  w.Int64(record.usage.prompt_tokens);
  w.Key("completion_tokens");
  w.Int64(record.usage.completion_tokens);
  w.Key("cost");
  w.Double(record.cost);
  w.EndObject();
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// What identifies a keel.llm call across attempts: its place among the
// execution's calls and a digest of everything it sends.
struct CallId {
  int seq = 0;
  std::string key;
};

CallId IdentifyCall(ActiveNode* active, const std::string& provider, const ChatRequest& request) {
  std::string sent = provider;
  for (const std::string* part :
       {&request.model, &request.system, &request.messages_json, &request.schema_json}) {
    sent.append(1, '\0').append(*part);
  }
  sent.append(1, '\0').append(request.temperature ? std::to_string(*request.temperature) : "-");
  sent.append(1, '\0').append(request.max_tokens ? std::to_string(*request.max_tokens) : "-");
  sent.append(1, '\0').append(std::to_string(static_cast<int>(request.output)));
  for (const ToolSpec& tool : request.tools) {
    sent.append(1, '\0').append(tool.name).append(1, '\0').append(tool.description);
    sent.append(1, '\0').append(tool.parameters_json);
  }
  return CallId{active->llm_calls++, Sha256Hex(sent)};
}

// The checkpoint step of a finished keel.llm call: {"llm": {seq, key, result}}.
std::string LlmStep(const CallId& id, const std::string& result_json) {
  return EventData()
      .AddRaw(
          "llm",
          EventData().Add("seq", id.seq).Add("key", id.key).AddRaw("result", result_json).Done())
      .Done();
}

// The result an earlier attempt (in this process or before a resume) got
// for the same call, as JSON; "" when there is none.
std::string RecordedResult(const NodeContext& ctx, const CallId& id) {
  for (const JsonText& step : ctx.journal) {
    // Only a step that names the call's digest is worth parsing.
    if (!step || step->find(id.key) == std::string::npos) continue;
    JsonDocument doc;
    if (doc.Parse(step->c_str(), step->size()).HasParseError() || !doc.IsObject()) continue;
    auto llm = doc.FindMember("llm");
    if (llm == doc.MemberEnd() || !llm->value.IsObject()) continue;
    const auto& v = llm->value;
    if (v.HasMember("seq") && v["seq"].IsInt() && v["seq"].GetInt() == id.seq &&
        v.HasMember("key") && v["key"].IsString() && id.key == v["key"].GetString() &&
        v.HasMember("result") && v["result"].IsObject()) {
      return wire::Serialize(v["result"]);
    }
  }
  return "";
}

// keel.llm(request): reads the request and yields until the reply.
int LlmWait(lua_State* L) {
  std::string error;
  ActiveNode* active = WaitingNode(L, "keel.llm", &error);
  if (active == nullptr) return Raise(L, error);
  if (lua_type(L, 1) != LUA_TTABLE) {
    return RaisePermanent(L, std::string("keel.llm expects a table, got ") + luaL_typename(L, 1));
  }
  std::string provider;
  ChatRequest request;
  error = UnknownField(L, kLlmFields);
  if (error.empty()) error = ReadChatRequest(L, &provider, &request);
  if (!error.empty()) return RaisePermanent(L, "keel.llm: " + error);
  LlmClient* llm = active->llm;
  if (llm == nullptr || llm->Find(provider) == nullptr) {
    std::string hint = llm == nullptr ? "" : DidYouMean(provider, llm->ProviderNames());
    return RaisePermanent(L, "keel.llm: unknown provider '" + provider + "'" +
                                 (hint.empty() ? " (declare it with keel.provider)" : hint));
  }
  const NodeContext* ctx = active->context;
  // A call an earlier attempt finished is answered from its checkpoint:
  // retries and resumes do not pay for it again.
  CallId id = IdentifyCall(active, provider, request);
  // A recorded result that no longer decodes is asked for again.
  std::string recorded = RecordedResult(*ctx, id);
  if (!recorded.empty() && PushJson(L, recorded).ok()) return 1;
  active->wait = [llm, ctx, provider, request, id](std::function<void(WaitResult)> finish) {
    llm->Call(provider, request, ctx->cancel, ctx->deadline,
              [ctx, finish, request, id](Result<ChatResponse> result, LlmCallRecord record) {
                ReportLlmCall(*ctx, record, 0);
                if (!result.ok()) return finish(ResumeWithFailure(result.status()));
                std::string json = ChatResultJson(*result, record, request);
                if (ctx->checkpoint) ctx->checkpoint(MakeJson(LlmStep(id, json)));
                finish(
                    ResumeWithJson(std::move(json), ErrorKind::kTransient, "keel.llm: the reply"));
              });
  };
  return kLuaYield;
}

// Reads keel.http's table argument; "" or what is wrong.
std::string ReadHttpRequest(lua_State* L, const ActiveNode& active, HttpRequest* request) {
  std::string error;
  request->method = "GET";
  if (!StringField(L, 1, "url", &request->url, &error) ||
      !StringField(L, 1, "method", &request->method, &error)) {
    return error;
  }
  if (request->url.empty()) return "'url' is required";
  lua_getfield(L, 1, "body");
  if (lua_type(L, -1) == LUA_TSTRING) {
    request->body = lua_tostring(L, -1);
  } else if (!lua_isnil(L, -1)) {
    Status status = LuaToJson(L, -1, &request->body);
    if (!status.ok()) return "'body': " + status.message();
    request->headers.emplace_back("Content-Type", "application/json");
  }
  lua_pop(L, 1);
  lua_getfield(L, 1, "headers");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
        return "'headers' must map names to strings";
      }
      request->headers.emplace_back(lua_tostring(L, -2), lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    return "'headers' must be a table";
  }
  lua_pop(L, 1);
  request->deadline = active.deadline;
  lua_getfield(L, 1, "timeout");
  if (!lua_isnil(L, -1)) {
    double timeout = lua_tonumber(L, -1);
    if (lua_type(L, -1) != LUA_TNUMBER || !(timeout > 0) || std::isinf(timeout)) {
      return "'timeout' must be a positive number of seconds";
    }
    double until = active.clock->Now() + timeout;
    if (request->deadline <= 0 || until < request->deadline) request->deadline = until;
  }
  lua_pop(L, 1);
  request->cancel = active.context->cancel;
  return "";
}

std::string HttpResultJson(const HttpResponse& response) {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("status");
  w.Int(response.status);
  w.Key("headers");
  w.StartObject();
  for (const auto& [name, value] : response.headers) {
    std::string key = ReplaceInvalidUtf8(name);
    w.Key(key.c_str(), static_cast<rapidjson::SizeType>(key.size()));
    wire::String(w, ReplaceInvalidUtf8(value));
  }
  w.EndObject();
  w.Key("body");
  wire::String(w, ReplaceInvalidUtf8(response.body));
  JsonDocument json;
  if (response.Header("content-type").find("json") != std::string::npos &&
      ParseUntrustedJson(response.body, &json).ok()) {
    w.Key("json");
    json.Accept(w);
  }
  w.Key("seconds");
  w.Double(response.seconds);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

// keel.http(request): reads the request and yields until the reply.
int HttpWait(lua_State* L) {
  std::string error;
  ActiveNode* active = WaitingNode(L, "keel.http", &error);
  if (active == nullptr) return Raise(L, error);
  if (lua_type(L, 1) != LUA_TTABLE) {
    return RaisePermanent(L, std::string("keel.http expects a table, got ") + luaL_typename(L, 1));
  }
  HttpRequest request;
  error = UnknownField(L, kHttpFields);
  if (error.empty()) error = ReadHttpRequest(L, *active, &request);
  if (!error.empty()) return RaisePermanent(L, "keel.http: " + error);
  HttpLoop* http = active->http;
  if (http == nullptr) return Raise(L, "keel.http: no I/O loop in this process");
  active->wait = [http, request](std::function<void(WaitResult)> finish) mutable {
    http->Send(std::move(request), [finish](HttpResponse response) {
      if (!response.transport.ok()) return finish(ResumeWithFailure(response.transport));
      finish(
          ResumeWithJson(HttpResultJson(response), ErrorKind::kTransient, "keel.http: the reply"));
    });
  };
  return kLuaYield;
}

// The rest of keel.llm / keel.http once the wait is over: the coroutine
// was resumed with (true, value), which is returned, or (false, failure),
// which is raised.
int AfterWait(lua_State* L, int /*status*/, lua_KContext /*ctx*/) {
  if (lua_toboolean(L, -2)) return 1;
  return lua_error(L);
}

}  // namespace

// keel.llm and keel.http are C functions themselves, not Lua wrappers around
// one, so that the script's line is the caller's frame even in `return
// keel.llm{...}`: a Lua tail call replaces the caller's frame, a tail call to a
// C function keeps it. A yield goes on in AfterWait.
void AddWaitingCalls(lua_State* L) {
  lua_pushcfunction(L, (&LuaTrampoline<LlmWait, &AfterWait>));
  lua_setfield(L, -2, "llm");
  lua_pushcfunction(L, (&LuaTrampoline<HttpWait, &AfterWait>));
  lua_setfield(L, -2, "http");
}

}  // namespace keel
