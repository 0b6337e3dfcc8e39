#pragma once
// Tmpfs: a small real tmpfs mounted on a fresh directory, for tests of what
// keel does when the disk under its database fills: Fill() takes every free
// byte with a file of its own, Free() gives it back. Unmounted (lazily, so
// a straggling process cannot keep it) and removed on destruction, also
// when the test fails.
//
// Mounting needs root; Mount says why it cannot otherwise, and the test
// skips. Not thread-safe; the file system itself may be used by any process.

#include <memory>
#include <string>

namespace keel::testing {

class Tmpfs {
 public:
  // Mounts a tmpfs of `size` ("4m") on a new directory under /tmp whose
  // root belongs to `uid` (-1: root) with mode 0700 (0755 for root). Null,
  // with *why set, when it cannot be mounted (not root, no mount rights).
  static std::unique_ptr<Tmpfs> Mount(const std::string& size, std::string* why, int uid = -1);
  ~Tmpfs();
  Tmpfs(const Tmpfs&) = delete;
  Tmpfs& operator=(const Tmpfs&) = delete;

  const std::string& dir() const { return dir_; }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Fills the file system to the last byte with a file of its own; false
  // when that file cannot be written for another reason than a full disk.
  [[nodiscard]] bool Fill();
  // Frees what Fill took.
  void Free();
  // Bytes still free.
  long long Available() const;

 private:
  explicit Tmpfs(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace keel::testing

// In a doctest test case: mounts a Tmpfs of `size` as `var` (a
// std::unique_ptr<Tmpfs>), or says why it cannot and returns (skipped).
#define KEEL_TMPFS_OR_SKIP(var, size)                                   \
  std::string var##_why;                                                \
  auto var = ::keel::testing::Tmpfs::Mount(size, &var##_why);           \
  if (!var) {                                                           \
    MESSAGE("skipped: cannot mount a tmpfs (" << var##_why << ")");     \
    return;                                                             \
  }
