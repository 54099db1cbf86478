#include "server/signals.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace evlog::server {
namespace {

absl::Mutex mu;
int first_signal ABSL_GUARDED_BY(mu) = 0;

sigset_t ShutdownSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

void WatchSignals() {
  const sigset_t set = ShutdownSet();
  bool seen = false;
  while (true) {
    int signal = 0;
    if (sigwait(&set, &signal) != 0) continue;
    if (seen) {
      const char message[] = "evlogd: second signal, exiting at once\n";
      (void)!write(STDERR_FILENO, message, sizeof(message) - 1);
      _exit(128 + signal);
    }
    seen = true;
    absl::MutexLock lock(&mu);
    first_signal = signal;
  }
}

}  // namespace

void ShutdownSignals::Install() {
  const sigset_t set = ShutdownSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread(WatchSignals).detach();
}

int ShutdownSignals::WaitForShutdown() {
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(
      +[](int* signal) { return *signal != 0; }, &first_signal));
  return first_signal;
}

}  // namespace evlog::server
