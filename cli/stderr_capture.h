#pragma once
// StderrCapture: while a live display owns the terminal, whatever else writes
// to stderr (keel.log lines from node bodies, warnings from libraries) is
// caught in a pipe and handed over line by line, so that the display can
// print it above itself instead of having it tear through the frame.
//
// Thread-safe as far as its contract goes: the callback runs on the capture's
// own reader thread; Stop() and the destructor are called from one thread.

#include <cstdio>
#include <functional>
#include <string>
#include <thread>

namespace keel::cli {

class StderrCapture {
 public:
  // Redirects file descriptor 2 into a pipe. `on_line` gets each line
  // (without its newline) from the reader thread. When the redirection
  // cannot be set up nothing changes and terminal() is stderr.
  explicit StderrCapture(std::function<void(std::string)> on_line);
  ~StderrCapture();

  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  // Where the display writes: the original stderr. Valid until destruction.
  std::FILE* terminal() const { return terminal_; }

  // Puts file descriptor 2 back and returns once every captured line has
  // been handed to `on_line`. Idempotent.
  void Stop();

 private:
  void Read(int fd);

  std::function<void(std::string)> on_line_;
  std::FILE* terminal_ = stderr;
  int saved_fd_ = -1;  // the original fd 2, while redirected
  std::thread reader_;
};

}  // namespace keel::cli
