#pragma once
// TempDir: a fresh directory for one test's files (workflows, databases,
// side-effect logs), removed with everything in it when the TempDir dies.
// Set KEEL_TEST_KEEP_DIRS=1 to keep it for a post-mortem.
//
// Not thread-safe; the directory itself may be used by any process.

#include <string>

namespace keel::testing {

class TempDir {
 public:
  // Creates the directory under $TMPDIR (else /tmp). Throws std::runtime_error on failure.
  TempDir();
  ~TempDir();

  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Absolute path of the directory.
  const std::string& path() const { return path_; }
  // Absolute path of `name` inside it.
  std::string Path(const std::string& name) const { return path_ + "/" + name; }
  // Writes `text` to `name` inside it and returns that file's path. Throws
  // std::runtime_error on failure.
  std::string Write(const std::string& name, const std::string& text) const;

 private:
  std::string path_;
};

}  // namespace keel::testing
