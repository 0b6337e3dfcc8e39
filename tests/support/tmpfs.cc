#include "tests/support/tmpfs.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace keel::testing {

std::unique_ptr<Tmpfs> Tmpfs::Mount(const std::string& size, std::string* why, int uid) {
  if (geteuid() != 0) {
    *why = "not root";
    return nullptr;
  }
  std::string dir = "/tmp/keel-tmpfs-XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    *why = std::string("mkdtemp: ") + std::strerror(errno);
    return nullptr;
  }
  std::string options = "size=" + size;
  if (uid >= 0) options += ",mode=0700,uid=" + std::to_string(uid);
  if (mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
    *why = std::string("mount -t tmpfs: ") + std::strerror(errno);
    rmdir(dir.c_str());
    return nullptr;
  }
  return std::unique_ptr<Tmpfs>(new Tmpfs(dir));
}

Tmpfs::~Tmpfs() {
  umount2(dir_.c_str(), MNT_DETACH);
  rmdir(dir_.c_str());
}

bool Tmpfs::Fill() {
  const std::string path = Path("filler");
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd < 0) return false;
  std::vector<char> block(64 * 1024, 'x');
  size_t size = block.size();
  while (size > 0) {
    ssize_t n = write(fd, block.data(), size);
    if (n < 0 && errno == ENOSPC) {
      size /= 2;  // top up the last partial block too
    } else if (n <= 0) {
      close(fd);
      return false;
    }
  }
  close(fd);
  return true;
}

void Tmpfs::Free() { unlink(Path("filler").c_str()); }

long long Tmpfs::Available() const {
  struct statvfs st;
  if (statvfs(dir_.c_str(), &st) != 0) return -1;
  return static_cast<long long>(st.f_bavail) * static_cast<long long>(st.f_frsize);
}

}  // namespace keel::testing
