#include "client/backoff.h"

#include <algorithm>
#include <optional>

#include "client/grpc_status.h"

namespace evlog::client {

absl::Duration Backoff::NextDelay(const absl::Status& status) {
  const double low = 1.0 - options_.jitter;
  const double high = 1.0 + options_.jitter;
  absl::Duration delay = current_ * absl::Uniform(rng_, low, high);
  delay = std::min(delay, options_.max);
  current_ = std::min(current_ * options_.multiplier, options_.max);
  if (std::optional<absl::Duration> hint = RetryAfter(status); hint.has_value()) {
    delay = std::max(delay, *hint);
  }
  return delay;
}

bool IsRetriable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsResourceExhausted(status);
}

}  // namespace evlog::client
