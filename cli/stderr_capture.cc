#include "cli/stderr_capture.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace keel::cli {

StderrCapture::StderrCapture(std::function<void(std::string)> on_line)
    : on_line_(std::move(on_line)) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  int saved = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
  std::FILE* terminal = saved >= 0 ? fdopen(saved, "w") : nullptr;
  if (terminal == nullptr || dup2(fds[1], STDERR_FILENO) < 0) {
    if (terminal != nullptr) {
      std::fclose(terminal);
    } else if (saved >= 0) {
      close(saved);
    }
    close(fds[0]);
    close(fds[1]);
    return;
  }
  close(fds[1]);  // fd 2 is now the only write end: restoring it ends the reader
  saved_fd_ = saved;
  terminal_ = terminal;
  std::setvbuf(terminal_, nullptr, _IOFBF, 1 << 16);
  reader_ = std::thread([this, fd = fds[0]] { Read(fd); });
}

StderrCapture::~StderrCapture() {
  Stop();
  if (terminal_ != stderr) std::fclose(terminal_);
}

void StderrCapture::Stop() {
  if (saved_fd_ < 0) return;
  std::fflush(stderr);
  dup2(saved_fd_, STDERR_FILENO);
  saved_fd_ = -1;
  if (reader_.joinable()) reader_.join();
}

void StderrCapture::Read(int fd) {
  std::string pending;
  char buffer[4096];
  for (;;) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    pending.append(buffer, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      on_line_(pending.substr(start, nl - start));
    }
    pending.erase(0, start);
  }
  if (!pending.empty()) on_line_(pending);
  close(fd);
}

}  // namespace keel::cli
