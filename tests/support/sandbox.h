#pragma once
// Sandbox: what most CLI tests start from: a fresh temp dir, a keel database
// path inside it and a KeelCli whose children run in that dir.
//
// Not thread-safe, except Keel()/Start(), which may be called from several
// threads (KeelCli is immutable).

#include <memory>
#include <string>
#include <vector>

#include "tests/support/json.h"
#include "tests/support/keel_cli.h"
#include "tests/support/subprocess.h"
#include "tests/support/temp_dir.h"

namespace keel::testing {

class Sandbox {
 public:
  explicit Sandbox(const std::string& keel_binary);

  const std::string& dir() const { return dir_.path(); }
  const std::string& db() const { return db_; }
  std::string Path(const std::string& name) const { return dir_.Path(name); }

  // Writes `text` to `name` in the sandbox and returns its absolute path.
  std::string Write(const std::string& name, const std::string& text) const;

  // `keel <args>`, run to completion (bounded by `timeout`).
  ExitInfo Keel(const std::vector<std::string>& args,
                std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  // `keel <args> --db <db()>`.
  ExitInfo KeelDb(const std::vector<std::string>& args,
                  std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  // Starts `keel <args> --db <db()>` and returns at once.
  std::unique_ptr<Subprocess> StartDb(const std::vector<std::string>& args) const;

  // `keel show RUN --json [--events]` parsed. Throws std::runtime_error with
  // the output when it does not exit 0 with one JSON value.
  Json Show(const std::string& run_id, bool events = false) const;
  // `keel runs --json --limit 100000 [extra]` parsed; throws like Show.
  Json Runs(const std::vector<std::string>& extra = {}) const;

 private:
  TempDir dir_;
  std::string db_;
  KeelCli cli_;
};

// The entry of `nodes` (an array of {node: name, ...} as `keel show --json`
// prints) for `name`; null when absent.
Json NodeEntry(const Json& nodes, const std::string& name);

}  // namespace keel::testing
