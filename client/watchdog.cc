#include "client/watchdog.h"

#include <algorithm>

namespace evlog::client {

Watchdog::Watchdog() : thread_([this] { Run(); }) {}

Watchdog::~Watchdog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

uint64_t Watchdog::Watch(grpc::ClientContext* context, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  const uint64_t handle = next_handle_++;
  entries_[handle] = Entry{context, deadline};
  return handle;
}

void Watchdog::Arm(uint64_t handle, absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(handle);
  if (it != entries_.end()) it->second.deadline = deadline;
}

bool Watchdog::Unwatch(uint64_t handle) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(handle);
  if (it == entries_.end()) return false;
  const bool fired = it->second.fired;
  entries_.erase(it);
  return fired;
}

void Watchdog::Run() {
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    absl::Time next = absl::InfiniteFuture();
    const absl::Time now = absl::Now();
    for (auto& [handle, entry] : entries_) {
      if (entry.fired) continue;
      if (entry.deadline <= now) {
        entry.fired = true;
        entry.context->TryCancel();  // thread-safe; never blocks on the call
      } else if (entry.deadline < next) {
        next = entry.deadline;
      }
    }
    // Wake at the next deadline, and at least every 100 ms to see new or moved deadlines.
    next = std::min(next, now + absl::Milliseconds(100));
    mu_.AwaitWithDeadline(absl::Condition(&stop_), next);
  }
}

}  // namespace evlog::client
