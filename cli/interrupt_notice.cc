#include "cli/interrupt_notice.h"

#include "cli/db_postgres.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string_view>
#include <system_error>
#include <thread>

#include "engine/mutex.h"
#include "nodes/child_process.h"

namespace keel::cli {
namespace {

// How often the clock's timer looks for a signal.
constexpr double kPollSeconds = 0.05;

// The number of the signal that came, or 0. Written by the handler only.
volatile sig_atomic_t caught = 0;

void OnSignal(int signal_number) { caught = signal_number; }

constexpr int kSignals[] = {SIGINT, SIGTERM};
// The main thread's alone (Hold, Arm, Seal, Disarm, Release):
struct sigaction previous[2];  // the actions OnSignal replaced
bool installed = false;        // OnSignal is installed, previous is saved
bool ignoring = false;         // SealRunEnd: ignored until the process exits

// Notes SIGINT and SIGTERM from now on (SA_RESETHAND: a second one acts as
// before). A signal the parent chose to ignore (nohup) stays ignored.
void Install() {
  if (installed || ignoring) return;
  struct sigaction action {};
  action.sa_handler = &OnSignal;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (int i = 0; i < 2; ++i) {
    sigaction(kSignals[i], nullptr, &previous[i]);
    if (previous[i].sa_handler != SIG_IGN) sigaction(kSignals[i], &action, nullptr);
  }
  installed = true;
}

// Puts back the actions Install replaced.
void Restore() {
  if (!installed) return;
  for (int i = 0; i < 2; ++i) sigaction(kSignals[i], &previous[i], nullptr);
  installed = false;
}

// Dies of `signal_number` as if it had not been caught.
[[noreturn]] void DieOf(int signal_number) {
  // Programs of exec nodes run in process groups of their own, which the
  // terminal's ^C does not reach: they must not outlive keel.
  KillAllPrograms();
  signal(signal_number, SIG_DFL);
  raise(signal_number);
  _exit(128 + signal_number);  // only if the signal is blocked in this thread
}

// One arming, shared by Arm/Disarm and the check's timer. The first four
// fields are set before the first timer; mu guards the rest.
struct Armed {
  Clock* clock = nullptr;
  std::string notice;
  int fd = STDERR_FILENO;
  std::function<void(int)> record;
  Mutex mu;
  TimerId timer GUARDED_BY(mu) = 0;
  bool stopped GUARDED_BY(mu) = false;   // disarmed or sealed: the timer does nothing more
  bool handling GUARDED_BY(mu) = false;  // a thread is ending the process
  bool sealed GUARDED_BY(mu) = false;    // SealRunEnd: signals are ignored until the process exits
};
std::shared_ptr<Armed> current;  // while armed; Arm and Disarm only
std::string notice_db;           // SetInterruptNoticeDb; the main thread's

// `word` as one shell word: as it is when it holds nothing the shell reads
// specially, else in single quotes.
std::string ShellWord(std::string_view word) {
  bool plain = !word.empty();
  for (char c : word) {
    bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                std::string_view("_-./+,:@%=").find(c) != std::string_view::npos;
    plain = plain && safe;
  }
  if (plain) return std::string(word);
  std::string quoted = "'";
  for (char c : word) {
    if (c == '\'') {
      quoted += "'\\''";
    } else {
      quoted += c;
    }
  }
  return quoted + "'";
}

// Tells, records, and dies of `signal_number`.
[[noreturn]] void EndBySignal(const Armed& armed, int signal_number) {
  if (armed.fd >= 0) {
    ssize_t ignored = write(armed.fd, armed.notice.data(), armed.notice.size());
    (void)ignored;
  }
  if (armed.record) armed.record(signal_number);
  DieOf(signal_number);
}

// Waits for the thread that is ending the process.
[[noreturn]] void AwaitEnd() {
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
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

void SetInterruptNoticeDb(const std::string& db) {
  notice_db.clear();
  if (db.empty()) return;
  if (IsPostgresDb(db)) {
    notice_db = DbName(db);
    return;
  }
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(db, ec);
  notice_db = ec ? db : absolute.lexically_normal().string();
}

std::string ResumeCommandFor(const std::string& run_id) {
  std::string command = "keel resume " + ShellWord(run_id);
  if (!notice_db.empty()) command += " --db " + ShellWord(notice_db);
  return command;
}

void HoldInterrupts() { Install(); }

void ReleaseInterrupts() {
  if (current || ignoring) return;
  Restore();
  if (caught != 0) DieOf(caught);
}

void ArmInterruptNotice(const std::string& run_id, int fd, Clock* clock,
                        std::function<void(int)> record) {
  DisarmInterruptNotice();
  auto armed = std::make_shared<Armed>();
  armed->clock = clock;
  armed->notice = "\nkeel: interrupted; resume with: " + ResumeCommandFor(run_id) + "\n";
  armed->fd = fd;
  armed->record = std::move(record);
  current = armed;
  // Already installed by HoldInterrupts, usually; a signal noted since is
  // found by the first check.
  Install();
  MutexLock lock(&armed->mu);
  std::weak_ptr<Armed> weak = armed;
  armed->timer = clock->After(kPollSeconds, [weak] { Check(weak); });
}

void SealRunEnd() {
  std::shared_ptr<Armed> armed = current;
  if (!armed) return;
  int signal_number = 0;
  {
    MutexLock lock(&armed->mu);
    if (armed->sealed) return;
    if (!armed->handling) {
      armed->stopped = true;
      armed->clock->Cancel(armed->timer);
      struct sigaction ignore {};
      ignore.sa_handler = SIG_IGN;
      sigemptyset(&ignore.sa_mask);
      for (int sig : kSignals) sigaction(sig, &ignore, nullptr);
      ignoring = true;
      // A signal caught before the line above interrupted the run: its finish
      // is not queued yet, so the interruption is what gets recorded. One
      // after it is ignored, and the run ends as it finished.
      signal_number = caught;
      armed->handling = signal_number != 0;
      armed->sealed = signal_number == 0;
      if (armed->sealed) return;
    }
  }
  // Another thread is recording the interruption and will end the process.
  if (signal_number == 0) AwaitEnd();
  EndBySignal(*armed, signal_number);
}

void DisarmInterruptNotice() {
  std::shared_ptr<Armed> armed = std::move(current);
  if (!armed) return;
  bool handling;
  {
    MutexLock lock(&armed->mu);
    if (armed->sealed) return;  // SIGINT and SIGTERM stay ignored until exit
    Restore();
    armed->stopped = true;
    armed->clock->Cancel(armed->timer);
    handling = armed->handling;
  }
  // Another thread is recording the interruption and will end the process.
  if (handling) AwaitEnd();
  if (caught != 0) EndBySignal(*armed, caught);
}

}  // namespace keel::cli
