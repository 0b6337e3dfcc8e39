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
  ScriptVersion version;
  version.script_path = run.script_path;
  version.script_sha256 = run.script_sha256;
  version.script_text = run.script_text;
  return LoadRecordedScript(version);
}

Result<std::shared_ptr<LoadedScript>> LoadRecordedScript(Store* store, const RunRecord& run) {
  auto versions = store->GetScriptVersions(run.id);
  if (!versions.ok() || versions->empty()) return LoadRecordedScript(run);
  return LoadRecordedScript(versions->back());
}

Result<std::shared_ptr<LoadedScript>> LoadRecordedScript(const ScriptVersion& version,
                                                        std::shared_ptr<QuotaSource> quotas) {
  LoadOptions options;
  options.clock = SystemClock();
  options.quotas = std::move(quotas);
  std::error_code ec;
  if (fs::is_regular_file(version.script_path, ec)) {
    auto current = LoadWorkflowFile(version.script_path, options);
    if (current.ok() && (*current)->info.sha256 == version.script_sha256) {
      bool same = true;
      for (const ScriptModule& m : version.modules) {
        bool found = false;
        for (const ScriptModule& now : (*current)->info.modules) {
          found = found || (now.path == m.path && now.sha256 == m.sha256);
        }
        same = same && found;
      }
      if (same) return current;
    }
  }

  TempDir dir;
  if (dir.path().empty()) {
    return Status::Error(ErrorKind::kPermanent,
                         "cannot create a temporary directory for the recorded script");
  }
  fs::path name = fs::path(version.script_path).filename();
  fs::path copy = dir.path() / (name.empty() ? fs::path("workflow.lua") : name);
  auto write = [](const fs::path& path, const std::string& text) {
    std::error_code ignored;
    fs::create_directories(path.parent_path(), ignored);
    std::ofstream out(path, std::ios::binary);
    out << text;
    return static_cast<bool>(out);
  };
  if (!write(copy, version.script_text)) {
    return Status::Error(ErrorKind::kPermanent,
                         "cannot write the recorded script to " + copy.string());
  }
  // Modules beside the script (or below it) go to the same place in the copy.
  const fs::path script_dir = fs::path(version.script_path).parent_path();
  for (const ScriptModule& m : version.modules) {
    fs::path relative = fs::path(m.path).lexically_relative(script_dir);
    if (relative.empty() || *relative.begin() == "..") continue;
    write(dir.path() / relative, m.text);
  }
  return LoadWorkflowFile(copy.string(), options);
}

}  // namespace keel::cli

namespace keel::cli {

std::vector<std::string> ScriptChanges(const ScriptVersion& recorded, const ScriptInfo& script) {
  std::vector<std::string> lines;
  if (recorded.script_sha256 != script.sha256) {
    lines.push_back(script.path + " changed since the run started");
  }
  for (const ScriptModule& now : script.modules) {
    const ScriptModule* before = nullptr;
    for (const ScriptModule& m : recorded.modules) {
      if (m.path == now.path) before = &m;
    }
    std::string which = "module " + now.name + " (" + now.path + ")";
    if (before == nullptr) {
      lines.push_back(which + " is required now");
    } else if (before->sha256 != now.sha256) {
      lines.push_back(which + " changed since the run started");
    }
  }
  for (const ScriptModule& before : recorded.modules) {
    bool kept = false;
    for (const ScriptModule& now : script.modules) kept = kept || now.path == before.path;
    if (!kept) {
      lines.push_back("module " + before.name + " (" + before.path + ") is no longer required");
    }
  }
  return lines;
}

void NoteScriptChanges(Store* store, const RunRecord& run, const ScriptInfo& script) {
  auto versions = store->GetScriptVersions(run.id);
  if (!versions.ok() || versions->empty()) return;
  ScriptVersion latest = versions->back();
  // A run recorded before versions were kept has no module list to compare.
  const bool legacy = versions->size() == 1 && latest.modules.empty();
  for (const std::string& line : ScriptChanges(latest, script)) {
    if (legacy && line.starts_with("module ")) continue;
    std::fprintf(stderr, "note: %s; resuming with the script as it is now\n", line.c_str());
  }
}

}  // namespace keel::cli
