// Watchdog: cancels gRPC calls whose deadline has passed, for long-lived streams whose
// deadline moves (a produce stream: the oldest unacknowledged request's deadline; a read
// stream: the time of the last response plus an idle allowance). gRPC's own deadline is fixed
// when a call starts, so it cannot express "no progress for N seconds".
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <thread>

#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evlog::client {

class Watchdog {
 public:
  Watchdog();
  // Stops the thread. REQUIRES: every watched context was unwatched.
  ~Watchdog();

  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Starts watching `context`: at `deadline` (absl::InfiniteFuture(): never) it is cancelled
  // with TryCancel, unless Arm/Unwatch changed the deadline first. Returns a handle.
  // `context` is not owned and must stay alive until Unwatch returns.
  uint64_t Watch(grpc::ClientContext* context, absl::Time deadline);

  // Moves the deadline of a watched context.
  void Arm(uint64_t handle, absl::Time deadline);

  // Stops watching. Returns true if the watchdog cancelled the context (its deadline passed).
  bool Unwatch(uint64_t handle);

 private:
  struct Entry {
    grpc::ClientContext* context;
    absl::Time deadline;
    bool fired = false;
  };

  void Run();

  absl::Mutex mu_;
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_handle_ ABSL_GUARDED_BY(mu_) = 1;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace evlog::client
