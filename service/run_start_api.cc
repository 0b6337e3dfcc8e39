#include "service/run_start_api.h"

#include <httplib.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "engine/clock.h"
#include "engine/process_owner.h"
#include "service/command_output.h"
#include "service/json_response.h"
#include "service/store_errors.h"
#include "service/workflow_path.h"
#include "views/json_out.h"

namespace keel::service {
namespace {

// How long POST resume waits for its child to claim the run (or fail first).
constexpr auto kClaimWait = std::chrono::seconds(10);

// The request body as a JSON object: empty bodies are {} when `optional`.
// False (the response set to 400) otherwise.
bool ParseBody(const httplib::Request& request, httplib::Response& response, bool optional,
               rapidjson::Document* body) {
  if (request.body.empty() && optional) {
    body->SetObject();
    return true;
  }
  body->Parse(request.body.c_str(), request.body.size());
  if (body->HasParseError() || !body->IsObject()) {
    JsonError(response, 400, "the request body must be a JSON object");
    return false;
  }
  return true;
}

// body[key] as a string: "" when absent; false (400 set) when not a string.
bool StringField(const rapidjson::Document& body, const char* key, httplib::Response& response,
                 std::string* value) {
  auto it = body.FindMember(key);
  if (it == body.MemberEnd() || it->value.IsNull()) return true;
  if (!it->value.IsString()) {
    JsonError(response, 400, std::string("\"") + key + "\" must be a string");
    return false;
  }
  value->assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

// body["params"] as `-p key=value` arguments: strings as they are (as a
// shell user would type them), anything else as JSON. False (400 set) when
// params is not an object or a key cannot be passed.
bool ParamArgs(const rapidjson::Document& body, httplib::Response& response,
               std::vector<std::string>* args) {
  auto it = body.FindMember("params");
  if (it == body.MemberEnd() || it->value.IsNull()) return true;
  if (!it->value.IsObject()) {
    JsonError(response, 400, "\"params\" must be a JSON object");
    return false;
  }
  for (const auto& member : it->value.GetObject()) {
    std::string key(member.name.GetString(), member.name.GetStringLength());
    if (key.empty() || key.find('=') != std::string::npos ||
        key.find('\0') != std::string::npos) {
      JsonError(response, 400, "params: '" + key + "' is not a parameter name");
      return false;
    }
    std::string value;
    if (member.value.IsString()) {
      value.assign(member.value.GetString(), member.value.GetStringLength());
    } else {
      rapidjson::StringBuffer buffer;
      rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
      member.value.Accept(writer);
      value.assign(buffer.GetString(), buffer.GetSize());
    }
    if (value.find('\0') != std::string::npos) {
      JsonError(response, 400, "params: the value of '" + key + "' contains a NUL byte");
      return false;
    }
    args->push_back("-p");
    args->push_back(key + "=" + value);
  }
  return true;
}

// The message a keel child printed last ("keel: MESSAGE"), without the prefix.
std::string LastError(const std::string& err) {
  std::istringstream lines(err);
  std::string last;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("keel: ", 0) == 0) {
      last = line.substr(6);
    } else if (last.empty() && !line.empty()) {
      last = line;
    }
  }
  return last.empty() ? "the keel child failed without a message" : last;
}

// What a run's log holds from `offset` on.
std::string ReadFrom(const std::string& path, uint64_t offset) {
  std::ifstream in(path, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(offset));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs a checking child (`keel submit`, `keel fork --queue`; service/
// command_output.h) and answers with its --json on success (201), its error
// otherwise (400).
bool AnswerQueued(const std::string& keel_path, std::vector<std::string> args,
                  std::chrono::milliseconds timeout, const std::string& what,
                  httplib::Response& response) {
  args.insert(args.begin(), keel_path);
  const double seconds = std::chrono::duration<double>(timeout).count();
  auto child = RunForOutput(args, seconds);
  if (child.ok() && child->exit_code == 0) {
    JsonBody(response, 201, std::move(child->out));
    return true;
  }
  if (!child.ok() && child.status().kind() == ErrorKind::kTimeout) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", seconds);
    JsonError(response, 400,
              what + " did not finish loading within " + text +
                  " s (does the script loop at load time?)");
    return false;
  }
  JsonError(response, 400, child.ok() ? LastError(child->err) : child.status().message());
  return false;
}

// The run a POST runs/ID/ACTION names, its body and the body's optional
// "from"; nullopt once the response says what was wrong.
std::optional<RunRecord> ActionTarget(Store* store, const httplib::Request& request,
                                      httplib::Response& response, rapidjson::Document* body,
                                      std::string* from) {
  if (!ParseBody(request, response, /*optional=*/true, body)) return std::nullopt;
  if (!StringField(*body, "from", response, from)) return std::nullopt;
  auto run = store->GetRun(request.matches[1]);
  if (!run.ok()) {
    StoreError(response, run.status());
    return std::nullopt;
  }
  return std::move(*run);
}

}  // namespace

RunStartApi::RunStartApi(const ServiceOptions& options, Store* store)
    : options_(options),
      store_(store),
      children_(options.keel_path, options.db, options.max_runs),
      launcher_(store, &children_),
      supervisor_(options, store, &children_, &launcher_) {}

RunStartApi::~RunStartApi() { supervisor_.Stop(); }

void RunStartApi::Start() { supervisor_.Start(); }
void RunStartApi::Stop() { supervisor_.Stop(); }

void RunStartApi::Register(httplib::Server& server) {
  server.Post("/api/v1/runs", [this](const httplib::Request& request, httplib::Response& response) {
    PostRun(request, response);
  });
  server.Post(R"(/api/v1/runs/([^/]+)/resume)",
              [this](const httplib::Request& request, httplib::Response& response) {
                PostResume(request, response);
              });
  server.Post(R"(/api/v1/runs/([^/]+)/fork)",
              [this](const httplib::Request& request, httplib::Response& response) {
                PostFork(request, response);
              });
}

void RunStartApi::PostRun(const httplib::Request& request, httplib::Response& response) {
  rapidjson::Document body;
  if (!ParseBody(request, response, /*optional=*/false, &body)) return;
  auto workflow = body.FindMember("workflow");
  if (workflow == body.MemberEnd() || !workflow->value.IsString()) {
    JsonError(response, 400, "\"workflow\" (a .lua file under --workflows) is required");
    return;
  }
  std::string requested(workflow->value.GetString(), workflow->value.GetStringLength());
  WorkflowPath path = ResolveWorkflowPath(options_.workflows, requested);
  if (path.http_status != 0) {
    JsonError(response, path.http_status, path.error);
    return;
  }
  std::vector<std::string> args = {"submit", path.path, "--db", options_.db, "--json"};
  if (!ParamArgs(body, response, &args)) return;
  if (AnswerQueued(options_.keel_path, args, check_timeout_, "workflow '" + requested + "'",
                   response)) {
    supervisor_.Wake();
  }
}

void RunStartApi::PostResume(const httplib::Request& request, httplib::Response& response) {
  rapidjson::Document body;
  std::string from;
  auto run = ActionTarget(store_, request, response, &body, &from);
  if (!run) return;
  const double now = SystemClock()->WallNow();
  if (run->status == RunStatus::kCancelled) {
    JsonError(response, 409, "run " + run->id + " was cancelled; it cannot be resumed");
    return;
  }
  if (run->status == RunStatus::kSucceeded && from.empty()) {
    JsonError(response, 409,
              "run " + run->id + " already succeeded; give \"from\" to run a node again");
    return;
  }
  if (OwnerAlive(run->owner, now - run->heartbeat) || launcher_.Launched(run->id)) {
    JsonError(response, 409,
              "run " + run->id + " is owned by the live process " +
                  std::to_string(run->owner.pid) + "@" + run->owner.host);
    return;
  }
  if (!children_.Reserve()) {
    JsonError(response, 503,
              "all " + std::to_string(children_.max_runs()) +
                  " --max-runs slots are taken; try again later");
    return;
  }
  std::vector<std::string> extra;
  if (!from.empty()) extra = {"--from", from};
  auto launch = launcher_.Start(*run, EventRecord{}, extra);
  if (!launch.ok()) {
    JsonError(response, 409, launch.status().message());
    return;
  }
  // Answer once the child claimed the run, or with its error if it ended
  // without claiming it (an unknown --from node, a missing script).
  const auto until = std::chrono::steady_clock::now() + kClaimWait;
  while (std::chrono::steady_clock::now() < until) {
    bool ended;
    {
      MutexLock lock(&(*launch)->mu);
      ended = (*launch)->ended;
    }
    if (ended) {
      if (launcher_.GaveBack(run->id, (*launch)->epoch + 1)) {
        std::string log = ReadFrom(children_.LogPath(run->id), (*launch)->log_offset);
        JsonError(response, 400, LastError(log));
        return;
      }
      break;
    }
    // Claimed: the epoch moved on and a process (not "no owner") holds it.
    auto now_run = store_->GetRun(run->id);
    if (now_run.ok() && now_run->epoch > (*launch)->epoch && now_run->owner.pid != 0) break;
    supervisor_.Wake();  // reaps the child if it ended
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  JsonOut out;
  out.BeginObject();
  out.Key("run_id").String(run->id);
  out.Key("status").String("running");
  out.EndObject();
  JsonBody(response, 202, out.Text());
}

void RunStartApi::PostFork(const httplib::Request& request, httplib::Response& response) {
  rapidjson::Document body;
  std::string from;
  auto run = ActionTarget(store_, request, response, &body, &from);
  if (!run) return;
  std::vector<std::string> args = {"fork", run->id, "--queue", "--json", "--db", options_.db};
  if (!from.empty()) {
    args.push_back("--from");
    args.push_back(from);
  }
  if (!ParamArgs(body, response, &args)) return;
  if (AnswerQueued(options_.keel_path, args, check_timeout_, "the fork of run " + run->id,
                   response)) {
    supervisor_.Wake();
  }
}

}  // namespace keel::service
