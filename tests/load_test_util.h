// Helpers shared by the load tests (burst_test, reconnect_storm_test): channels that do not
// share a TCP connection, the retry hint of a refused call, and a thread that keeps asking
// evlogd's health service while a test loads it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evlog::testing {

// A channel of its own to `address`: distinct channel arguments (`id`) keep gRPC from sharing
// one TCP connection (subchannel) between channels to the same address.
std::shared_ptr<grpc::Channel> NewConnection(const std::string& address, int id);

// The retry hint of a finished call (its `retry-after-ms` trailer) in ms, or 0 if none.
int64_t TrailerHint(const grpc::ClientContext& context);

// Checks evlogd's health (grpc.health.v1, overall status) every `interval` from its own thread
// and connection, each check with deadline `timeout`, until Stop or destruction. Counts answers
// SERVING and everything else (errors, timeouts, NOT_SERVING). Thread-safe.
class HealthWatcher {
 public:
  HealthWatcher(const std::string& address, int connection_id, absl::Duration interval,
                absl::Duration timeout);
  ~HealthWatcher();
  HealthWatcher(const HealthWatcher&) = delete;
  HealthWatcher& operator=(const HealthWatcher&) = delete;

  // Stops checking and waits for the thread. Idempotent.
  void Stop();

  int64_t serving() const { return serving_.load(); }
  int64_t not_serving() const { return not_serving_.load(); }
  // What the last check that was not SERVING saw ("" if none).
  std::string last_problem() const;

 private:
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> serving_{0};
  std::atomic<int64_t> not_serving_{0};
  mutable absl::Mutex mu_;
  std::string last_problem_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace evlog::testing
