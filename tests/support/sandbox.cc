#include "tests/support/sandbox.h"

#include <stdexcept>

#include "tests/support/files.h"

namespace keel::testing {
namespace {

std::vector<std::string> WithDb(std::vector<std::string> args, const std::string& db) {
  args.push_back("--db");
  args.push_back(db);
  return args;
}

Json ParseOutput(const std::string& what, const ExitInfo& info) {
  if (info.exit_code != 0) throw std::runtime_error(what + " failed: " + info.Describe());
  return Json::Parse(info.out);
}

}  // namespace

Sandbox::Sandbox(const std::string& keel_binary)
    : db_(dir_.Path("keel.db")), cli_(keel_binary, dir_.path()) {}

std::string Sandbox::Write(const std::string& name, const std::string& text) const {
  std::string path = Path(name);
  WriteFile(path, text);
  return path;
}

ExitInfo Sandbox::Keel(const std::vector<std::string>& args,
                       std::chrono::milliseconds timeout) const {
  return cli_.Run(args, timeout);
}

ExitInfo Sandbox::KeelDb(const std::vector<std::string>& args,
                         std::chrono::milliseconds timeout) const {
  return cli_.Run(WithDb(args, db_), timeout);
}

std::unique_ptr<Subprocess> Sandbox::StartDb(const std::vector<std::string>& args) const {
  return cli_.Start(WithDb(args, db_));
}

Json Sandbox::Show(const std::string& run_id, bool events) const {
  std::vector<std::string> args{"show", run_id, "--json"};
  if (events) args.push_back("--events");
  return ParseOutput("keel show " + run_id, KeelDb(args));
}

Json Sandbox::Runs(const std::vector<std::string>& extra) const {
  std::vector<std::string> args{"runs", "--json", "--limit", "100000"};
  args.insert(args.end(), extra.begin(), extra.end());
  return ParseOutput("keel runs", KeelDb(args));
}

Json NodeEntry(const Json& nodes, const std::string& name) {
  for (size_t i = 0; i < nodes.Size(); ++i) {
    if (nodes[i]["node"].Str() == name) return nodes[i];
  }
  return Json::Null();
}

}  // namespace keel::testing
