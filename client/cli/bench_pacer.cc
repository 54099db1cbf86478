#include "client/cli/bench_pacer.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace evlog::cli {

SendPacer::SendPacer(int64_t first_due_ns, double rate_per_s, int64_t tick_ns)
    : first_due_ns_(first_due_ns),
      period_ns_(1e9 / rate_per_s),
      tick_ns_(std::max<int64_t>(0, tick_ns)),
      // No wake-up yet: the first sleep may end as soon as the first event is due.
      last_wake_ns_(std::numeric_limits<int64_t>::min() / 2) {}

int64_t SendPacer::FirstDue(int64_t start_ns, int32_t index, int32_t producers, double rate_per_s,
                            int64_t tick_ns) {
  const double spread = std::max(1e9 / rate_per_s, static_cast<double>(tick_ns));
  return start_ns + std::llround(spread * index / std::max(1, producers));
}

int64_t SendPacer::Due(int64_t i) const {
  return first_due_ns_ + std::llround(static_cast<double>(i) * period_ns_);
}

int64_t SendPacer::SleepBefore(int64_t i, int64_t now_ns) const {
  const int64_t due = Due(i);
  if (due <= now_ns) return 0;
  return std::max(due, last_wake_ns_ + tick_ns_) - now_ns;
}

}  // namespace evlog::cli
