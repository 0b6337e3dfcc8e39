#include "tests/support/keel_cli.h"

#include <regex>

namespace keel::testing {
namespace {

SpawnOptions Options(const std::string& cwd, const std::vector<std::string>& args) {
  SpawnOptions options;
  options.args = args;
  options.cwd = cwd;
  options.env.emplace_back("KEEL_DB", std::nullopt);
  return options;
}

}  // namespace

KeelCli::KeelCli(std::string binary, std::string cwd)
    : binary_(std::move(binary)), cwd_(std::move(cwd)) {}

ExitInfo KeelCli::Run(const std::vector<std::string>& args,
                      std::chrono::milliseconds timeout) const {
  return RunProcess(binary_, Options(cwd_, args), timeout);
}

std::unique_ptr<Subprocess> KeelCli::Start(const std::vector<std::string>& args) const {
  return std::make_unique<Subprocess>(binary_, Options(cwd_, args));
}

std::string RunIdFromStderr(const std::string& err) {
  static const std::regex kLine(R"((^|\n)run (\S+) (started|resumed)\b)");
  std::smatch match;
  return std::regex_search(err, match, kLine) ? match[2].str() : "";
}

}  // namespace keel::testing
