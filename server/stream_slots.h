// StreamSlots: a cap on concurrent calls of one kind (produce streams, read streams). A call
// takes a slot when it starts and gives it back when it ends; when none is free the call is
// refused at once with RESOURCE_EXHAUSTED rather than queued.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>

namespace evlog::server {

class StreamSlots {
 public:
  // REQUIRES: capacity >= 1.
  explicit StreamSlots(int32_t capacity) : capacity_(capacity) {}

  // Takes a slot; false if all `capacity` slots are taken.
  bool TryAcquire() {
    int32_t used = used_.load(std::memory_order_relaxed);
    while (used < capacity_) {
      if (used_.compare_exchange_weak(used, used + 1, std::memory_order_acq_rel)) return true;
    }
    return false;
  }

  // Gives back a slot taken by a successful TryAcquire.
  void Release() { used_.fetch_sub(1, std::memory_order_acq_rel); }

  int32_t capacity() const { return capacity_; }
  int32_t in_use() const { return used_.load(std::memory_order_relaxed); }

 private:
  const int32_t capacity_;
  std::atomic<int32_t> used_{0};
};

}  // namespace evlog::server
