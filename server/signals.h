// ShutdownSignals: turns SIGTERM and SIGINT into a graceful-shutdown request, and a second one
// into an immediate exit.
//
// Install() must run in main() before any other thread starts (gRPC and the store start
// threads): it blocks both signals in the calling thread, so every thread started later
// inherits the mask, and a dedicated thread receives them with sigwait(). The first signal
// wakes WaitForShutdown(); a second one ends the process at once with status 128+signal.
#pragma once

namespace evlog::server {

class ShutdownSignals {
 public:
  // Blocks SIGTERM and SIGINT and starts the signal thread. Call once.
  static void Install();

  // Blocks until the first SIGTERM or SIGINT; returns its number.
  static int WaitForShutdown();
};

}  // namespace evlog::server
