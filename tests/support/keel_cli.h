#pragma once
// KeelCli: runs the real `keel` binary for integration tests.
//
// Children run in a working directory of the test's choosing, with KEEL_DB
// unset so that only an explicit --db picks the database. Immutable after
// construction; safe to use from several threads.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace keel::testing {

class KeelCli {
 public:
  KeelCli(std::string binary, std::string cwd);

  // Runs `keel <args>` to completion; on `timeout` it is killed and the
  // result says timed_out.
  ExitInfo Run(const std::vector<std::string>& args,
               std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

  // Starts `keel <args>` and returns at once. Throws when it cannot start.
  std::unique_ptr<Subprocess> Start(const std::vector<std::string>& args) const;

 private:
  std::string binary_;
  std::string cwd_;
};

// The run id from the first `run <ID> started` or `run <ID> resumed` line of
// `err`, or "" when there is none yet.
std::string RunIdFromStderr(const std::string& err);

}  // namespace keel::testing
