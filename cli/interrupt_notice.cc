#include "cli/interrupt_notice.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace keel::cli {
namespace {

// Written by Arm while the handler is not installed, read by the handler.
char notice[256];
size_t notice_length = 0;
volatile sig_atomic_t notice_fd = STDERR_FILENO;

void OnSignal(int signal_number) {
  ssize_t ignored = write(notice_fd, notice, notice_length);
  (void)ignored;
  // SA_RESETHAND has restored the default action: this ends the process.
  raise(signal_number);
}

constexpr int kSignals[] = {SIGINT, SIGTERM};
struct sigaction previous[2];  // the actions Arm replaced, restored by Disarm
bool armed = false;

}  // namespace

void ArmInterruptNotice(const std::string& run_id, int fd) {
  DisarmInterruptNotice();
  int n = std::snprintf(notice, sizeof notice, "\nkeel: interrupted; resume with: keel resume %s\n",
                        run_id.c_str());
  notice_length = n < 0 ? 0 : std::min(static_cast<size_t>(n), sizeof notice - 1);
  notice_fd = fd;
  struct sigaction action {};
  action.sa_handler = &OnSignal;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (int i = 0; i < 2; ++i) {
    sigaction(kSignals[i], nullptr, &previous[i]);
    // A signal the parent chose to ignore (nohup) stays ignored.
    if (previous[i].sa_handler != SIG_IGN) sigaction(kSignals[i], &action, nullptr);
  }
  armed = true;
}

void DisarmInterruptNotice() {
  if (!armed) return;
  for (int i = 0; i < 2; ++i) sigaction(kSignals[i], &previous[i], nullptr);
  armed = false;
}

}  // namespace keel::cli
