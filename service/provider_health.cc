#include "service/provider_health.h"

#include <httplib.h>
#include <rapidjson/document.h>

#include <chrono>
#include <cstdio>
#include <sstream>
#include <vector>

#include "engine/clock.h"
#include "service/command_output.h"
#include "service/json_response.h"
#include "service/service_options.h"
#include "views/json_out.h"
#include "views/provider_check.h"

namespace keel::service {
namespace {

double SteadyNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Member(const rapidjson::Value& doc, const char* name) {
  auto it = doc.FindMember(name);
  return it != doc.MemberEnd() && it->value.IsString() ? it->value.GetString() : "";
}

// The JSON objects `out` holds, one a line; lines that are not are skipped.
std::vector<std::string> JsonLines(const std::string& out) {
  std::vector<std::string> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    rapidjson::Document doc;
    doc.Parse(line.c_str(), line.size());
    if (!doc.HasParseError() && doc.IsObject()) lines.push_back(line);
  }
  return lines;
}

}  // namespace

std::unique_ptr<Component> MakeProviderHealth(const ServiceOptions& options) {
  ProviderHealthOptions health;
  health.keel_path = options.keel_path;
  health.workflows = options.workflows;
  return std::make_unique<ProviderHealth>(health);
}

ProviderHealth::ProviderHealth(ProviderHealthOptions options) : options_(std::move(options)) {}

ProviderHealth::~ProviderHealth() { Stop(); }

void ProviderHealth::Register(httplib::Server& server) {
  server.Get("/api/v1/providers", [this](const httplib::Request&, httplib::Response& res) {
    JsonBody(res, 200, ResultsJson());
  });
  server.Post(R"(/api/v1/providers/([^/]+)/check)",
              [this](const httplib::Request& req, httplib::Response& res) {
                std::string name = req.matches[1];
                std::string result = CheckNow(name);
                if (result.empty()) {
                  JsonError(res, 404,
                            "no provider '" + name + "' with a health interval under --workflows");
                  return;
                }
                JsonBody(res, 200, result);
              });
}

void ProviderHealth::Start() {
  {
    MutexLock lock(&mu_);
    stop_ = false;
  }
  stopping_ = false;
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
}

void ProviderHealth::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    wake_.SignalAll();
  }
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

int ProviderHealth::Discover() {
  auto child = RunForOutput(
      {options_.keel_path, "doctor", "--workflows", options_.workflows, "--list", "--json"}, 60,
      &stopping_);
  if (!child.ok() || child->exit_code != 0) {
    std::fprintf(stderr, "keel serve: provider discovery failed: %s\n",
                 child.ok() ? "keel doctor --list failed" : child.status().message().c_str());
    MutexLock lock(&mu_);
    return static_cast<int>(entries_.size());
  }
  std::map<std::string, Entry> found;
  for (const std::string& line : JsonLines(child->out)) {
    rapidjson::Document doc;
    doc.Parse(line.c_str(), line.size());
    std::string name = Member(doc, "provider");
    if (name.empty() || found.count(name)) continue;
    Entry entry;
    entry.file = Member(doc, "file");
    auto interval = doc.FindMember("health_interval");
    if (interval == doc.MemberEnd() || !interval->value.IsNumber()) continue;
    entry.interval = interval->value.GetDouble();
    entry.json = line;
    found.emplace(name, std::move(entry));
  }
  MutexLock lock(&mu_);
  for (auto& [name, entry] : found) {
    auto old = entries_.find(name);
    if (old != entries_.end() && old->second.file == entry.file) {
      // Keep its last result and schedule, at the new interval.
      old->second.interval = entry.interval;
      entry = old->second;
    }
  }
  entries_ = std::move(found);
  return static_cast<int>(entries_.size());
}

std::string ProviderHealth::CheckNow(const std::string& name) {
  std::string file;
  double interval = 0;
  {
    MutexLock lock(&mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) return "";
    file = it->second.file;
    interval = it->second.interval;
  }
  char timeout[32];
  std::snprintf(timeout, sizeof timeout, "%g", options_.check_timeout_s);
  // From the workflows directory, so the result names the file as the
  // listing does; after "--", a file name is never taken for an option.
  auto child = RunForOutput(
      {options_.keel_path, "doctor", "--provider", name, "--json", "--timeout", timeout, "--", file},
      4 * options_.check_timeout_s + 10, &stopping_, options_.workflows);
  std::string result;
  for (const std::string& line : JsonLines(child.ok() ? child->out : std::string())) {
    rapidjson::Document doc;
    doc.Parse(line.c_str(), line.size());
    if (Member(doc, "provider") == name) result = line;
  }
  if (result.empty()) {
    ProviderCheck failed;
    failed.provider = name;
    failed.file = file;
    failed.health_interval = interval;
    failed.result = "failed";
    failed.failed_step = "load";
    failed.error = !child.ok() && child.status().kind() == ErrorKind::kTimeout
                       ? "keel doctor did not finish in time"
                   : !child.ok() ? "cannot run keel doctor: " + child.status().message()
                                 : "keel doctor exited with status " +
                                       std::to_string(child->exit_code) +
                                       " (the file no longer loads or declares it?)";
    failed.checked_at = SystemClock()->WallNow();
    result = ProviderCheckJson(failed);
  }
  MutexLock lock(&mu_);
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    it->second.json = result;
    it->second.next_due = SteadyNow() + it->second.interval;
  }
  return result;
}

std::string ProviderHealth::ResultsJson() {
  JsonOut out;
  out.BeginArray();
  MutexLock lock(&mu_);
  for (const auto& [name, entry] : entries_) out.Raw(entry.json);
  out.EndArray();
  return out.Text();
}

void ProviderHealth::Loop() {
  double next_discovery = 0;
  for (;;) {
    {
      MutexLock lock(&mu_);
      if (stop_) return;
    }
    if (SteadyNow() >= next_discovery) {
      Discover();
      next_discovery = SteadyNow() + options_.discovery_interval_s;
    }
    std::vector<std::string> due;
    {
      MutexLock lock(&mu_);
      for (const auto& [name, entry] : entries_) {
        if (entry.next_due <= SteadyNow()) due.push_back(name);
      }
    }
    for (const std::string& name : due) {
      {
        MutexLock lock(&mu_);
        if (stop_) return;
      }
      CheckNow(name);
    }
    MutexLock lock(&mu_);
    if (stop_) return;
    double wait = next_discovery - SteadyNow();
    for (const auto& [name, entry] : entries_) wait = std::min(wait, entry.next_due - SteadyNow());
    wait = std::max(0.05, std::min(wait, 1.0));
    wake_.WaitFor(&mu_, std::chrono::duration<double>(wait));
  }
}

}  // namespace keel::service
