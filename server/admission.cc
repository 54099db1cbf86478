#include "server/admission.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/byte_size.h"
#include "server/status_mapping.h"

namespace evlog::server {
namespace {

// Time constants of the decaying averages (see ByteBudget).
constexpr double kRateWindowSeconds = 1.0;
constexpr double kRefusedWindowSeconds = 0.25;
// Connection refusals are remembered over this window when hinting retries to new connections.
constexpr double kConnectionRefusalWindowSeconds = 1.0;

int64_t ClampHint(double ms) {
  if (!(ms >= kMinRetryAfterMs)) return kMinRetryAfterMs;  // also NaN
  if (ms >= kMaxRetryAfterMs) return kMaxRetryAfterMs;
  return static_cast<int64_t>(std::ceil(ms));
}

}  // namespace

absl::StatusOr<MemoryBudget> SplitMemoryBudget(int64_t total) {
  if (total < kMinMemoryBudgetBytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--memory-budget=", FormatByteSize(total), " is below the minimum of ",
        FormatByteSize(kMinMemoryBudgetBytes),
        ": evlogd divides it between RocksDB, its queues and gRPC, and each needs room for "
        "at least one maximal request"));
  }
  MemoryBudget b;
  b.total = total;
  b.memtables = total / 4;
  b.block_cache = total / 8;
  b.writer_queue = total / 8;
  b.writer_queue_per_topic = b.writer_queue / 2;
  b.inflight = total / 8;
  b.inflight_per_connection = b.inflight / 8;
  b.grpc = total / 8;
  b.unassigned = total - b.memtables - b.block_cache - b.writer_queue - b.inflight - b.grpc;
  return b;
}

std::string DescribeMemoryBudget(const MemoryBudget& b) {
  return absl::StrCat("memory budget ", FormatByteSize(b.total), ": RocksDB memtables ",
                      FormatByteSize(b.memtables), ", block cache ", FormatByteSize(b.block_cache),
                      ", writer queues ", FormatByteSize(b.writer_queue), " (",
                      FormatByteSize(b.writer_queue_per_topic), " per topic), in-flight requests ",
                      FormatByteSize(b.inflight), " (", FormatByteSize(b.inflight_per_connection),
                      " per connection), gRPC buffers ", FormatByteSize(b.grpc), ", unassigned ",
                      FormatByteSize(b.unassigned));
}

// --- ByteBudget ---

ByteBudget::ByteBudget(int64_t capacity, absl::Time now) : capacity_(capacity), last_(now) {}

void ByteBudget::Decay(absl::Time now) {
  const double dt = absl::ToDoubleSeconds(now - last_);
  if (dt <= 0) return;  // the clock may step back a little between threads
  drain_rate_ *= std::exp(-dt / kRateWindowSeconds);
  refused_recent_ *= std::exp(-dt / kRefusedWindowSeconds);
  last_ = now;
}

void ByteBudget::Release(int64_t bytes, absl::Time now) {
  used_ -= bytes;
  Decay(now);
  // Each released byte adds 1/window to the rate: a steady flow of R bytes/s converges to R.
  drain_rate_ += static_cast<double>(bytes) / kRateWindowSeconds;
}

double ByteBudget::DrainRate(absl::Time now) {
  Decay(now);
  return drain_rate_;
}

int64_t ByteBudget::Refuse(int64_t bytes, absl::Time now, double floor_rate, int64_t reserve) {
  return Hint(std::max<int64_t>(0, used_ + bytes - (capacity_ - reserve)), bytes, now, floor_rate);
}

int64_t ByteBudget::RefuseElsewhere(int64_t bytes, absl::Time now) {
  return Hint(bytes, bytes, now, 0);
}

int64_t ByteBudget::Hint(int64_t must_free, int64_t bytes, absl::Time now, double floor_rate) {
  Decay(now);
  const double must_leave = static_cast<double>(must_free) + refused_recent_;
  refused_recent_ += static_cast<double>(bytes);
  const double rate = std::max({drain_rate_, floor_rate, 1.0});
  return ClampHint(1000.0 * must_leave / rate);
}

// --- AdmissionController ---

class AdmissionController::Connection {
 public:
  Connection(std::string peer, int64_t capacity, absl::Time now)
      : peer(std::move(peer)), budget(capacity, now) {}
  const std::string peer;
  int calls = 0;
  ByteBudget budget;
};

AdmissionController::AdmissionController(const AdmissionLimits& limits,
                                         std::function<absl::Time()> clock)
    : limits_(limits),
      clock_(std::move(clock)),
      reserve_(limits.max_inflight_bytes / 4),
      light_connection_bytes_(
          std::min(limits.max_connection_inflight_bytes, limits.max_inflight_bytes / 64)),
      global_(limits.max_inflight_bytes, clock_()),
      last_connection_refusal_(clock_()) {}

AdmissionController::~AdmissionController() = default;

void AdmissionController::SetRefusalObserver(
    std::function<void(absl::string_view reason)> observer) {
  observer_ = std::move(observer);
}

void AdmissionController::Refused(absl::string_view reason) const {
  if (observer_) observer_(reason);
}

absl::StatusOr<AdmissionController::Connection*> AdmissionController::StartCall(
    absl::string_view peer) {
  const absl::Time now = clock_();
  int64_t hint = 0;
  size_t open = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = connections_.find(peer);
    if (it != connections_.end()) {
      ++it->second->calls;
      return it->second.get();
    }
    open = connections_.size();
    if (open < static_cast<size_t>(limits_.max_connections)) {
      auto connection = std::make_unique<Connection>(std::string(peer),
                                                     limits_.max_connection_inflight_bytes, now);
      connection->calls = 1;
      Connection* raw = connection.get();
      connections_.emplace(raw->peer, std::move(connection));
      counters_.connections = static_cast<int32_t>(connections_.size());
      return raw;
    }
    // No way to know when a connection will end its calls: the base hint, stretched by how
    // many connections were refused lately, so that a reconnect storm spreads itself out.
    const double dt = absl::ToDoubleSeconds(now - last_connection_refusal_);
    if (dt > 0) {
      refused_connections_recent_ *= std::exp(-dt / kConnectionRefusalWindowSeconds);
      last_connection_refusal_ = now;
    }
    refused_connections_recent_ += 1;
    hint = ClampHint(static_cast<double>(limits_.base_retry_after_ms) *
                     (1.0 + refused_connections_recent_ / limits_.max_connections));
    ++counters_.refused_connections;
  }
  Refused(kRefusedConnectionLimit);
  return WithRetryHint(absl::ResourceExhaustedError(absl::StrCat(
                           "evlogd already serves produce calls from ", open,
                           " connections (--max-connections=", limits_.max_connections,
                           "); retry after the hint, or share connections between producers")),
                       hint);
}

void AdmissionController::EndCall(Connection* connection) {
  absl::MutexLock lock(&mu_);
  if (--connection->calls > 0) return;
  // Every request's bytes were released before its call ended, so nothing is lost with it.
  connections_.erase(connection->peer);
  counters_.connections = static_cast<int32_t>(connections_.size());
}

absl::Status AdmissionController::Charge(Connection* connection, int64_t bytes) {
  const absl::Time now = clock_();
  int64_t hint = 0;
  bool connection_full = false;
  int64_t used = 0;
  int64_t capacity = 0;
  {
    absl::MutexLock lock(&mu_);
    if (!connection->budget.Fits(bytes)) {
      connection_full = true;
      used = connection->budget.used();
      capacity = connection->budget.capacity();
      // A connection's fair share of the global drain rate is the floor of its own estimate.
      const double share =
          global_.DrainRate(now) / static_cast<double>(std::max<size_t>(1, connections_.size()));
      hint = connection->budget.Refuse(bytes, now, share);
      ++counters_.refused_connection_bytes;
    } else if (!global_.Fits(bytes, reserve_) &&
               !(global_.Fits(bytes) &&
                 connection->budget.used() + bytes <= light_connection_bytes_)) {
      // Over the shared part, and this connection is not light enough for the reserve.
      used = global_.used();
      capacity = global_.capacity();
      const bool light = connection->budget.used() + bytes <= light_connection_bytes_;
      hint = global_.Refuse(bytes, now, 0, light ? 0 : reserve_);
      ++counters_.refused_inflight;
    } else {
      connection->budget.Charge(bytes);
      global_.Charge(bytes);
      return absl::OkStatus();
    }
  }
  Refused(kRefusedInflightBudget);
  return WithRetryHint(
      absl::ResourceExhaustedError(
          absl::StrCat(connection_full ? "this connection's" : "the server's",
                       " in-flight request budget is full (", FormatByteSize(used), " of ",
                       FormatByteSize(capacity), " held by requests not yet answered; this one is ",
                       FormatByteSize(bytes),
                       "); the request was not appended: resend it after retry_after_ms")),
      hint);
}

void AdmissionController::Release(Connection* connection, int64_t bytes) {
  const absl::Time now = clock_();
  absl::MutexLock lock(&mu_);
  connection->budget.Release(bytes, now);
  global_.Release(bytes, now);
}

absl::Status AdmissionController::HintStorageRefusal(absl::Status status, int64_t bytes) {
  if (status.code() != absl::StatusCode::kResourceExhausted || RetryHintOf(status) > 0) {
    return status;
  }
  int64_t hint;
  {
    absl::MutexLock lock(&mu_);
    hint = global_.RefuseElsewhere(bytes, clock_());
  }
  return WithRetryHint(std::move(status), hint);
}

int64_t AdmissionController::inflight_bytes() const {
  absl::MutexLock lock(&mu_);
  return global_.used();
}

AdmissionStats AdmissionController::Stats() const {
  absl::MutexLock lock(&mu_);
  AdmissionStats stats = counters_;
  stats.inflight_bytes = global_.used();
  return stats;
}

}  // namespace evlog::server
