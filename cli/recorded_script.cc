#include "cli/recorded_script.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "engine/clock.h"

namespace keel::cli {
namespace fs = std::filesystem;

namespace {

// A temporary directory removed, with its contents, on destruction. Not
// thread-safe; owned by one caller.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "keel-script-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

Result<std::shared_ptr<LoadedScript>> LoadRecordedScript(const RunRecord& run) {
  LoadOptions options;
  options.clock = SystemClock();
  std::error_code ec;
  if (fs::is_regular_file(run.script_path, ec)) {
    auto current = LoadWorkflowFile(run.script_path, options);
    if (current.ok() && (*current)->info.sha256 == run.script_sha256) return current;
  }

  TempDir dir;
  if (dir.path().empty()) {
    return Status::Error(ErrorKind::kPermanent,
                         "cannot create a temporary directory for the recorded script");
  }
  fs::path name = fs::path(run.script_path).filename();
  fs::path copy = dir.path() / (name.empty() ? fs::path("workflow.lua") : name);
  {
    std::ofstream out(copy, std::ios::binary);
    out << run.script_text;
    if (!out) {
      return Status::Error(ErrorKind::kPermanent,
                           "cannot write the recorded script to " + copy.string());
    }
  }
  return LoadWorkflowFile(copy.string(), options);
}

}  // namespace keel::cli
