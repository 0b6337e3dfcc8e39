// `keel serve`: the operator service (DESIGN.md §9). Checks the flags, opens
// (or creates) the database and hands over to service::Service.

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "cli/commands.h"
#include "cli/db.h"
#include "cli/exit_codes.h"
#include "service/listen_address.h"
#include "service/service.h"
#include "views/format.h"

namespace keel::cli {
namespace {

// The running executable, which child runs use.
std::string ThisExecutable() {
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.string();
}

}  // namespace

int ServeCommand(const ServeArgs& args) {
  service::ServiceOptions options;
  options.listen = args.listen;
  options.db = ResolveDbPath(args.db);
  options.auto_resume = args.auto_resume;
  options.max_resumes = args.max_resumes;
  options.token_env = args.token_env;
  options.max_runs = args.max_runs;
  options.notify = args.notify;

  auto address = service::ParseListenAddress(args.listen);
  if (!address.ok()) return UsageError(address.status().message());
  std::string token;
  if (!args.token_env.empty()) {
    const char* value = std::getenv(args.token_env.c_str());
    if (value == nullptr || *value == '\0') {
      return UsageError("--token-env " + args.token_env + ": the variable " + args.token_env +
                        " is unset or empty; put the bearer token in it");
    }
    token = value;
  } else if (!service::IsLoopback(address->host)) {
    return UsageError("--listen " + args.listen +
                      ": an address other than loopback needs --token-env VAR (the variable "
                      "holding the bearer token every request must send)");
  }
  if (!ParseDuration(args.resume_grace, &options.resume_grace_s)) {
    return UsageError("--resume-grace '" + args.resume_grace +
                      "': expected a duration such as 10s, 2m or 1h");
  }
  if (!args.notify.empty() && !args.notify.starts_with("http://") &&
      !args.notify.starts_with("https://")) {
    return UsageError("--notify '" + args.notify + "': expected an http:// or https:// URL");
  }
  std::error_code ec;
  std::filesystem::path workflows = std::filesystem::canonical(args.workflows, ec);
  if (ec || !std::filesystem::is_directory(workflows, ec)) {
    return UsageError("--workflows '" + args.workflows + "': not a directory");
  }
  options.workflows = workflows.string();
  if (!args.web_dir.empty()) {
    std::filesystem::path web_dir = std::filesystem::canonical(args.web_dir, ec);
    if (ec || !std::filesystem::is_directory(web_dir, ec)) {
      return UsageError("--web-dir '" + args.web_dir + "': not a directory");
    }
    options.web_dir = web_dir.string();
  }
  options.keel_path = ThisExecutable();
  if (options.keel_path.empty()) {
    return UsageError("cannot find this keel executable (/proc/self/exe)");
  }

  DbOpenOptions open_options;
  open_options.create = true;
  auto store = OpenDb(options.db, open_options);
  if (!store.ok()) return UsageError(store.status().message());
  service::Service service(std::move(options), std::move(store).value(), std::move(token));
  return service.Run();
}

}  // namespace keel::cli
