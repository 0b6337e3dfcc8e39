// CurrentOwner and OwnerAlive against real processes: this one, children
// that live, exited-but-unreaped children (zombies) and reaped ones.

#include "engine/process_owner.h"

#include <doctest/doctest.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>

namespace keel {
namespace {

// A child process that reports its CurrentOwner().start_ticks, optionally
// after renaming itself, then waits until Release() before exiting.
class Child {
 public:
  explicit Child(const char* name = nullptr) {
    int report[2];
    REQUIRE(pipe(report) == 0);
    REQUIRE(pipe(release_) == 0);
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      close(report[0]);
      close(release_[1]);  // or the read below never sees end-of-file
      if (name != nullptr) prctl(PR_SET_NAME, name);
      int64_t ticks = CurrentOwner().start_ticks;
      if (write(report[1], &ticks, sizeof ticks) != sizeof ticks) _exit(2);
      char byte;
      _exit(read(release_[0], &byte, 1) < 0 ? 3 : 0);
    }
    close(report[1]);
    close(release_[0]);
    REQUIRE(read(report[0], &start_ticks_, sizeof start_ticks_) == sizeof start_ticks_);
    close(report[0]);
  }
  ~Child() {
    Release();
    if (!reaped_) Reap();
  }

  Owner owner() const { return Owner{pid_, CurrentOwner().host, start_ticks_}; }

  // Lets the child exit.
  void Release() {
    if (release_[1] >= 0) close(release_[1]);
    release_[1] = -1;
  }
  // Lets the child exit and waits until it has, without reaping it.
  void WaitForZombie() {
    Release();
    siginfo_t info{};
    REQUIRE(waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) == 0);
  }
  // Lets the child exit and reaps it.
  void Reap() {
    Release();
    int status = 0;
    REQUIRE(waitpid(pid_, &status, 0) == pid_);
    reaped_ = true;
  }

 private:
  pid_t pid_ = -1;
  int release_[2] = {-1, -1};
  int64_t start_ticks_ = 0;
  bool reaped_ = false;
};

TEST_CASE("the current process is its own live owner") {
  Owner self = CurrentOwner();
  CHECK(self.pid == getpid());
  CHECK_FALSE(self.host.empty());
  CHECK(self.start_ticks > 0);
  CHECK(OwnerAlive(self, 1e9));  // on this host the heartbeat does not matter
}

TEST_CASE("a different start time means the pid was reused: dead") {
  Owner self = CurrentOwner();
  self.start_ticks += 1;
  CHECK_FALSE(OwnerAlive(self, 0));
}

TEST_CASE("a live child is alive; exited, unreaped and reaped it is dead") {
  Child child;
  Owner owner = child.owner();
  CHECK(owner.start_ticks >= CurrentOwner().start_ticks);
  CHECK(OwnerAlive(owner, 0));
  child.WaitForZombie();
  CHECK_FALSE(OwnerAlive(owner, 0));
  child.Reap();
  CHECK_FALSE(OwnerAlive(owner, 0));
}

TEST_CASE("a command name with spaces and parentheses does not confuse /proc parsing") {
  Child child("x) y (z) 1 2");
  Owner owner = child.owner();
  CHECK(owner.start_ticks >= CurrentOwner().start_ticks);
  CHECK(OwnerAlive(owner, 0));
  Owner other = owner;
  other.start_ticks += 1;
  CHECK_FALSE(OwnerAlive(other, 0));
}

TEST_CASE("an owner on another host is judged by its heartbeat") {
  Owner remote{CurrentOwner().pid, CurrentOwner().host + "-elsewhere", 1};
  CHECK(OwnerAlive(remote, 5, 30));
  CHECK(OwnerAlive(remote, 29.9, 30));
  CHECK_FALSE(OwnerAlive(remote, 30, 30));
  CHECK_FALSE(OwnerAlive(remote, 31));
}

TEST_CASE("pids that name no single process are dead") {
  Owner owner = CurrentOwner();
  for (int64_t pid : {int64_t{0}, int64_t{-1}, int64_t{1} << 40}) {
    owner.pid = pid;
    CHECK_FALSE(OwnerAlive(owner, 0));
  }
}

}  // namespace
}  // namespace keel
