#include "cli/parent_death.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace keel::cli {

void DieWithParentIfAsked() {
  const char* value = std::getenv("KEEL_PARENT_DEATH");
  if (value == nullptr) return;
  const long parent = std::strtol(value, nullptr, 10);
  unsetenv("KEEL_PARENT_DEATH");
  if (parent <= 0) return;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The parent may have died before the request was made: then the kernel
  // has already re-parented this process and will send nothing.
  if (getppid() != static_cast<pid_t>(parent)) _exit(1);
}

}  // namespace keel::cli
