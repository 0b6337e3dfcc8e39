// `keel doctor FILE.lua` and `keel doctor --workflows DIR`: checks providers
// one after the other and prints a line (or a JSON document) for each.
// Exit 0 when every check passed, 1 when one failed, 2 for a file that does
// not load or a bad option.

#include "cli/doctor_command.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <system_error>
#include <vector>

#include "cli/exit_codes.h"
#include "cli/provider_doctor.h"
#include "nodes/endpoint_probe.h"
#include "scripts/workflow_loader.h"
#include "views/json_out.h"
#include "views/provider_check.h"

namespace keel::cli {
namespace {

void Print(const ProviderCheck& check, bool json) {
  if (json) {
    std::printf("%s\n", ProviderCheckJson(check).c_str());
  } else if (check.result == "pending") {
    std::printf("%s: provider '%s' (%s), health interval %g s\n", check.file.c_str(),
                check.provider.c_str(), check.kind.c_str(), check.health_interval);
  } else {
    std::printf("%s\n", ProviderCheckLine(check).c_str());
  }
  std::fflush(stdout);
}

Result<std::shared_ptr<LoadedScript>> Load(const std::string& path,
                                           const std::shared_ptr<HttpLoop>& loop) {
  LoadOptions options;
  options.http = loop;
  options.clock = loop->clock();
  return LoadWorkflowFile(path, options);
}

// The .lua files under `dir`, sorted, relative to it.
std::vector<std::string> LuaFiles(const std::string& dir, std::string* error) {
  std::vector<std::string> files;
  std::error_code ec;
  auto it = std::filesystem::recursive_directory_iterator(dir, ec);
  if (ec) {
    *error = "--workflows " + dir + ": " + ec.message();
    return files;
  }
  for (const auto& entry : it) {
    std::error_code type_ec;
    if (entry.is_regular_file(type_ec) && entry.path().extension() == ".lua") {
      files.push_back(std::filesystem::relative(entry.path(), dir, type_ec).string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

int CheckFile(const DoctorArgs& args, const std::shared_ptr<HttpLoop>& loop) {
  auto script = Load(args.file, loop);
  if (!script.ok()) return UsageError(script.status().message());
  const std::vector<ProviderConfig>& providers = (*script)->providers;
  std::vector<const ProviderConfig*> chosen;
  std::string names;
  for (const ProviderConfig& p : providers) {
    names += (names.empty() ? "" : ", ") + p.name;
    if (args.provider.empty() || p.name == args.provider) chosen.push_back(&p);
  }
  if (!args.provider.empty() && chosen.empty()) {
    return UsageError("--provider " + args.provider + ": " + args.file +
                      " declares no such provider" +
                      (names.empty() ? "" : " (it declares " + names + ")"));
  }
  if (chosen.empty()) {
    if (!args.json) std::printf("%s: declares no providers\n", args.file.c_str());
    return kExitSucceeded;
  }
  int exit_code = kExitSucceeded;
  for (const ProviderConfig* p : chosen) {
    ProviderCheck check = CheckProvider(*p, args.file, args.timeout, loop.get());
    Print(check, args.json);
    if (check.result != "ok") exit_code = kExitFailed;
  }
  return exit_code;
}

int CheckDirectory(const DoctorArgs& args, const std::shared_ptr<HttpLoop>& loop) {
  std::string error;
  std::vector<std::string> files = LuaFiles(args.workflows, &error);
  if (!error.empty()) return UsageError(error);
  int exit_code = kExitSucceeded;
  for (const std::string& file : files) {
    auto script = Load(args.workflows + "/" + file, loop);
    if (!script.ok()) {
      // Modules and work in progress live beside workflows: say so, go on.
      std::string message = script.status().message();
      std::fprintf(stderr, "keel doctor: skipped %s: %s\n", file.c_str(),
                   message.substr(0, message.find('\n')).c_str());
      continue;
    }
    for (const ProviderConfig& p : (*script)->providers) {
      if (p.health_interval <= 0) continue;
      if (!args.provider.empty() && p.name != args.provider) continue;
      if (args.list) {
        ProviderCheck listed;
        listed.provider = p.name;
        listed.kind = p.kind;
        listed.file = file;
        listed.model = p.model;
        listed.endpoint = EndpointOf(p.base_url);
        listed.health_interval = p.health_interval;
        Print(listed, args.json);
        continue;
      }
      ProviderCheck check = CheckProvider(p, file, args.timeout, loop.get());
      Print(check, args.json);
      if (check.result != "ok") exit_code = kExitFailed;
    }
  }
  return exit_code;
}

}  // namespace

int DoctorCommand(const DoctorArgs& args) {
  if (args.file.empty() == args.workflows.empty()) {
    return UsageError("keel doctor takes a workflow file or --workflows DIR (one of them)");
  }
  if (args.list && args.workflows.empty()) return UsageError("--list needs --workflows DIR");
  std::shared_ptr<HttpLoop> loop;
  try {
    loop = std::make_shared<HttpLoop>(SystemClock());
  } catch (const std::system_error& e) {
    return UsageError(std::string("cannot start the HTTP loop: ") + e.what());
  }
  return args.file.empty() ? CheckDirectory(args, loop) : CheckFile(args, loop);
}

void AddDoctorCommand(CLI::App& app, DoctorArgs* args, std::function<int()>* action) {
  auto* cmd = app.add_subcommand(
      "doctor", "Check the LLM providers a workflow declares: key, endpoint, a minimal request");
  cmd->add_option("file", args->file, "Workflow script (.lua)");
  cmd->add_option("--workflows", args->workflows,
                  "Check (or --list) the providers with a health interval in every .lua file "
                  "under DIR instead");
  cmd->add_option("--provider", args->provider, "Check only the provider with this name");
  cmd->add_flag("--json", args->json, "Print one JSON document a line per provider");
  cmd->add_flag("--list", args->list, "With --workflows: list the providers, do not check them");
  cmd->add_option("--timeout", args->timeout,
                  "Seconds each network step may take (DNS, connect, TLS; the request)")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  cmd->callback([args, action] { *action = [args] { return DoctorCommand(*args); }; });
}

}  // namespace keel::cli
