#include "cli/interrupt_notice.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <thread>

#include "engine/mutex.h"

namespace keel::cli {
namespace {

// How often the clock's timer looks for a signal.
constexpr double kPollSeconds = 0.05;

// The number of the signal that came, or 0. Written by the handler only.
volatile sig_atomic_t caught = 0;

void OnSignal(int signal_number) { caught = signal_number; }

constexpr int kSignals[] = {SIGINT, SIGTERM};
struct sigaction previous[2];  // the actions Arm replaced, restored by Disarm

// One arming, shared by Arm/Disarm and the check's timer. The first four
// fields are set before the first timer; mu guards the rest.
struct Armed {
  Clock* clock = nullptr;
  std::string notice;
  int fd = STDERR_FILENO;
  std::function<void(int)> record;
  Mutex mu;
  TimerId timer GUARDED_BY(mu) = 0;
  bool stopped GUARDED_BY(mu) = false;   // disarmed: the timer does nothing more
  bool handling GUARDED_BY(mu) = false;  // a thread is ending the process
};
std::shared_ptr<Armed> current;  // while armed; Arm and Disarm only

// Tells, records, and dies of `signal_number`.
[[noreturn]] void EndBySignal(const Armed& armed, int signal_number) {
  ssize_t ignored = write(armed.fd, armed.notice.data(), armed.notice.size());
  (void)ignored;
  if (armed.record) armed.record(signal_number);
  // SA_RESETHAND restored the default action when the signal came.
  signal(signal_number, SIG_DFL);
  raise(signal_number);
  _exit(128 + signal_number);  // only if the signal is blocked in this thread
}

void Check(const std::weak_ptr<Armed>& weak) {
  std::shared_ptr<Armed> armed = weak.lock();
  if (!armed) return;
  MutexLock lock(&armed->mu);
  if (armed->stopped) return;
  int signal_number = caught;
  if (signal_number != 0) {
    armed->handling = true;
    std::thread([armed, signal_number] { EndBySignal(*armed, signal_number); }).detach();
    return;
  }
  armed->timer = armed->clock->After(kPollSeconds, [weak] { Check(weak); });
}

}  // namespace

void ArmInterruptNotice(const std::string& run_id, int fd, Clock* clock,
                        std::function<void(int)> record) {
  DisarmInterruptNotice();
  auto armed = std::make_shared<Armed>();
  armed->clock = clock;
  armed->notice = "\nkeel: interrupted; resume with: keel resume " + run_id + "\n";
  armed->fd = fd;
  armed->record = std::move(record);
  current = armed;
  struct sigaction action {};
  action.sa_handler = &OnSignal;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (int i = 0; i < 2; ++i) {
    sigaction(kSignals[i], nullptr, &previous[i]);
    // A signal the parent chose to ignore (nohup) stays ignored.
    if (previous[i].sa_handler != SIG_IGN) sigaction(kSignals[i], &action, nullptr);
  }
  MutexLock lock(&armed->mu);
  std::weak_ptr<Armed> weak = armed;
  armed->timer = clock->After(kPollSeconds, [weak] { Check(weak); });
}

void DisarmInterruptNotice() {
  std::shared_ptr<Armed> armed = std::move(current);
  if (!armed) return;
  for (int i = 0; i < 2; ++i) sigaction(kSignals[i], &previous[i], nullptr);
  bool handling;
  {
    MutexLock lock(&armed->mu);
    armed->stopped = true;
    armed->clock->Cancel(armed->timer);
    handling = armed->handling;
  }
  if (handling) {
    // Another thread is recording the interruption and will end the process.
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (caught != 0) EndBySignal(*armed, caught);
}

}  // namespace keel::cli
