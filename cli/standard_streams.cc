#include "cli/standard_streams.h"

#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/exit_codes.h"

namespace keel::cli {
namespace {

void IgnoreSignal(int) {}

// errno of the first failed FlushStdout, or 0.
int flush_error = 0;

}  // namespace

void SurviveSigpipe() {
  struct sigaction action {};
  action.sa_handler = &IgnoreSignal;
  action.sa_flags = SA_RESTART;
  sigemptyset(&action.sa_mask);
  sigaction(SIGPIPE, &action, nullptr);
}

void FlushStdout() {
  if (std::fflush(stdout) != 0 && flush_error == 0) flush_error = errno;
}

int FinishStdout(int exit_code) {
  bool failed = std::ferror(stdout) != 0;
  int error = 0;
  if (std::fflush(stdout) != 0) {
    failed = true;
    error = errno;
  }
  if (std::fclose(stdout) != 0) {
    failed = true;
    if (error == 0) error = errno;
  }
  if (!failed) return exit_code;
  if (error == 0) error = flush_error;
  if (error == EPIPE) return kExitOutput;
  std::string message = "write error";
  if (error != 0) message += std::string(": ") + std::strerror(error);
  PrintError(message);
  return kExitOutput;
}

}  // namespace keel::cli
