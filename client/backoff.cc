#include "client/backoff.h"

#include <algorithm>
#include <optional>

#include "client/grpc_status.h"

namespace evlog::client {

absl::Duration Backoff::NextDelay(const absl::Status& status) {
  const absl::Duration step = std::min(current_, options_.max);
  current_ = std::min(current_ * options_.multiplier, options_.max);
  if (std::optional<absl::Duration> hint = RetryAfter(status); hint.has_value()) {
    return *hint * absl::Uniform(rng_, 1.0, 1.0 + std::max(0.0, options_.jitter));
  }
  return step * absl::Uniform(rng_, 0.0, 1.0);
}

bool IsRetriable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsResourceExhausted(status);
}

}  // namespace evlog::client
