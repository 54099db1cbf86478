// Exponential backoff with full jitter for retrying calls that failed with a retriable status.
//
// Each delay is drawn uniformly from [0, d] where d doubles per attempt up to a cap ("full
// jitter"): thousands of clients cut off together and retrying together spread their attempts
// over the whole window instead of coming back in waves. A server's retry hint (retry-after-ms)
// is a floor: the delay is then the hint plus up to `jitter` of it, never less.
//
// Example:
//   Backoff backoff;
//   while (true) {
//     absl::Status s = Call();
//     if (!IsRetriable(s) || absl::Now() + backoff.Peek() > deadline) return s;
//     absl::SleepFor(backoff.NextDelay(s));
//   }
//
// Thread safety: not thread-safe; one Backoff per retry loop.
#pragma once

#include <cstdint>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/time/time.h"

namespace evlog::client {

struct BackoffOptions {
  absl::Duration initial = absl::Milliseconds(50);  // first delay. Default: 50 ms.
  absl::Duration max = absl::Seconds(5);            // cap on any delay. Default: 5 s.
  double multiplier = 2.0;                          // growth per attempt. Default: 2.
  // With a server's retry hint h, the delay is drawn from [h, h * (1 + jitter)], so that the
  // clients refused together do not all come back at the same instant. Default: 0.2.
  double jitter = 0.2;
};

class Backoff {
 public:
  explicit Backoff(const BackoffOptions& options = {}) : options_(options) {}

  // The delay before the next attempt, uniform in [0, d] for the current step d (full jitter),
  // and advances the schedule. If `status` carries the server's retry hint (see RetryAfter in
  // grpc_status.h), the delay is the hint plus up to `jitter` of it instead.
  absl::Duration NextDelay(const absl::Status& status = absl::OkStatus());

  // The current step d (the most NextDelay may return without a hint), without advancing.
  absl::Duration Peek() const { return current_; }

  // Back to the initial delay (after a success).
  void Reset() { current_ = options_.initial; }

 private:
  BackoffOptions options_;
  absl::Duration current_ = options_.initial;
  absl::BitGen rng_;
};

// True for codes after which the same call may succeed if simply sent again:
// UNAVAILABLE (no connection, server shutting down) and RESOURCE_EXHAUSTED (pushed back).
bool IsRetriable(const absl::Status& status);

}  // namespace evlog::client
