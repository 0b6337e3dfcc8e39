#pragma once
// `keel doctor`: checks the LLM providers workflow files declare (see
// cli/provider_doctor.h and docs/reference.md). Called from the main thread.

#include <functional>
#include <string>

namespace CLI {
class App;
}

namespace keel::cli {

struct DoctorArgs {
  std::string file;       // FILE.lua; or
  std::string workflows;  // --workflows DIR: every .lua file under it, providers with a health interval
  std::string provider;   // --provider NAME: only this one
  bool json = false;      // one JSON document a line per provider
  bool list = false;      // with --workflows: list, do not check
  double timeout = 10;    // seconds per network step
};
int DoctorCommand(const DoctorArgs& args);

// Adds the `doctor` subcommand to `app`; parsing it sets *action.
void AddDoctorCommand(CLI::App& app, DoctorArgs* args, std::function<int()>* action);

}  // namespace keel::cli
