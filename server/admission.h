// Admission control for produce calls, and the --memory-budget split.
//
// Issue #6: a burst must push back, never knock evlogd over. Three things here keep memory
// bounded whatever the load:
//
//   MemoryBudget         one --memory-budget divided into documented shares: RocksDB memtables
//                        and block cache, the storage writer's queues, in-flight produce
//                        requests, gRPC's own buffers, and a remainder for everything that is
//                        not budgeted (code, thread stacks, table readers, read responses).
//   ByteBudget           bytes held by produce requests between being read off a stream and
//                        their response being written; knows how fast it drains, so that a
//                        refusal carries a retry hint computed from the budget's state.
//   AdmissionController  a global ByteBudget, one per connection (a connection is the peer
//                        string of a call, unique per TCP connection), and a cap on the number
//                        of connections with produce calls in progress. What does not fit is
//                        refused at once with RESOURCE_EXHAUSTED and a retry hint, never queued.
//                        The last quarter of the global budget is kept for light connections
//                        (little in flight), so that a flood from a few busy connections does
//                        not lock out a quiet producer elsewhere.
//
// What gRPC reads before admission sees a request is bounded elsewhere: per stream by
// EdgeLimits::max_inflight_per_stream (the stream stops reading), per connection by HTTP/2's
// MAX_CONCURRENT_STREAMS (--max-streams-per-connection), and overall by gRPC's ResourceQuota
// (the budget's gRPC share). README "Capacity and backpressure" has the whole picture.
//
// Example (a produce stream):
//   absl::StatusOr<AdmissionController::Connection*> conn = admission.StartCall(ctx->peer());
//   if (!conn.ok()) return Finish(conn.status());          // RESOURCE_EXHAUSTED + hint
//   if (absl::Status s = admission.Charge(*conn, size); !s.ok()) answer(s);  // not appended
//   ... append, write the response ...
//   admission.Release(*conn, size);
//   admission.EndCall(*conn);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace evlog::server {

// ---------------------------------------------------------------------------------------------
// The memory budget.

// --memory-budget's default and its smallest accepted value. Below 64 MiB the shares get too
// small to hold even one maximal produce request per budget.
inline constexpr int64_t kDefaultMemoryBudgetBytes = int64_t{1} << 30;
inline constexpr int64_t kMinMemoryBudgetBytes = int64_t{64} << 20;

// How evlogd divides its memory budget. Each share is a hard bound enforced by its owner,
// except `unassigned`, which is what is left for memory nobody bounds explicitly.
struct MemoryBudget {
  int64_t total = 0;
  // 1/4: RocksDB memtables of every segment, one WriteBufferManager that stalls the storage
  // writer when full (which fills the writer queues, which refuses produce requests).
  int64_t memtables = 0;
  // 1/8: RocksDB's block cache (reads of data that left the memtables).
  int64_t block_cache = 0;
  // 1/8: encoded batches waiting for the storage writer (storage::Options::max_queued_bytes);
  // one topic may hold half of it (max_topic_queued_bytes), so a flood leaves room for others.
  int64_t writer_queue = 0;
  int64_t writer_queue_per_topic = 0;
  // 1/8: produce requests in flight (read, not yet answered); one connection may hold 1/8 of
  // that, so a few greedy connections cannot take it all.
  int64_t inflight = 0;
  int64_t inflight_per_connection = 0;
  // 1/8: gRPC's ResourceQuota: transport buffers, HTTP/2 flow-control windows, messages read
  // but not yet handed to a service.
  int64_t grpc = 0;
  // The remaining 1/4: not enforced by anyone: code and thread stacks, RocksDB table readers,
  // read responses being built, allocator slack.
  int64_t unassigned = 0;
};

// Divides `total` bytes as documented on MemoryBudget.
// Errors: INVALID_ARGUMENT (naming --memory-budget) if `total` < kMinMemoryBudgetBytes.
// Thread-safe (pure function).
absl::StatusOr<MemoryBudget> SplitMemoryBudget(int64_t total);

// One line for the startup log, e.g. "memory budget 1GiB: memtables 256MiB, ...".
std::string DescribeMemoryBudget(const MemoryBudget& budget);

// ---------------------------------------------------------------------------------------------
// Byte budgets and retry hints.

// Retry hints given with a refusal are clamped to this range.
inline constexpr int64_t kMinRetryAfterMs = 10;
inline constexpr int64_t kMaxRetryAfterMs = 1000;

// A byte budget with a drain-rate estimate.
//
// The retry hint answers "when will there be room for me?": the bytes that must leave the
// budget before this request fits, plus the bytes refused in the last ~250 ms (those
// producers come back too, and ahead of this one), divided by the rate bytes have been leaving
// the budget (an exponentially weighted average over ~1 s). So a burst of refusals stretches
// the hints and spreads the retries out, and a budget that drains fast gives short hints.
//
// Thread safety: none; the owner serializes calls (AdmissionController holds its lock).
class ByteBudget {
 public:
  // REQUIRES: capacity > 0.
  explicit ByteBudget(int64_t capacity, absl::Time now);

  // True if `bytes` more fit below capacity - `reserve`, or nothing is charged at all (a
  // request larger than the whole budget is let in alone, so that it can make progress; the
  // overshoot is bounded by one request, itself bounded by gRPC's maximum message size).
  bool Fits(int64_t bytes, int64_t reserve = 0) const {
    return used_ == 0 || used_ + bytes <= capacity_ - reserve;
  }

  // Adds `bytes` to the budget's use, unconditionally (call Fits first).
  void Charge(int64_t bytes) { used_ += bytes; }

  // Gives back `bytes` charged earlier and counts them into the drain rate.
  void Release(int64_t bytes, absl::Time now);

  // Records that `bytes` were refused by Fits(bytes, reserve) and returns the retry hint in
  // milliseconds, in [kMinRetryAfterMs, kMaxRetryAfterMs]. `floor_rate` (bytes/s) is used when
  // the budget's own drain rate is lower (e.g. a new connection, whose rate is not known yet).
  int64_t Refuse(int64_t bytes, absl::Time now, double floor_rate = 0, int64_t reserve = 0);

  // As Refuse, for `bytes` refused by a queue downstream of this budget (the storage writer's)
  // that drains at about this budget's rate: the hint is the time for `bytes` (plus the bytes
  // refused lately) to drain, whatever this budget's own use.
  int64_t RefuseElsewhere(int64_t bytes, absl::Time now);

  // The drain rate estimate, bytes/s, as of `now`.
  double DrainRate(absl::Time now);

  int64_t used() const { return used_; }
  int64_t capacity() const { return capacity_; }

 private:
  // Brings the decaying averages to `now`.
  void Decay(absl::Time now);
  // Records `bytes` refused; the hint for `must_free` bytes (plus those refused lately) to
  // drain at max(drain rate, floor_rate).
  int64_t Hint(int64_t must_free, int64_t bytes, absl::Time now, double floor_rate);

  const int64_t capacity_;
  int64_t used_ = 0;
  double drain_rate_ = 0;      // bytes/s released, averaged over kRateWindow
  double refused_recent_ = 0;  // bytes refused, decaying over kRefusedWindow
  absl::Time last_;
};

// ---------------------------------------------------------------------------------------------
// The admission controller.

struct AdmissionLimits {
  // Bytes of produce requests in flight, over all connections (--memory-budget / 8).
  int64_t max_inflight_bytes = kDefaultMemoryBudgetBytes / 8;
  // Bytes of produce requests in flight on one connection (max_inflight_bytes / 8).
  int64_t max_connection_inflight_bytes = kDefaultMemoryBudgetBytes / 64;
  // Connections that may have produce calls in progress at once (--max-connections).
  int32_t max_connections = 1000;
  // Concurrent streams (calls of any kind) per connection, sent to clients as HTTP/2's
  // SETTINGS_MAX_CONCURRENT_STREAMS: a client queues further calls itself until one ends.
  // Enforced by gRPC, not by AdmissionController (--max-streams-per-connection).
  int32_t max_streams_per_connection = 100;
  // The hint for a refused connection when nothing better is known, in ms (--retry-after-ms).
  int64_t base_retry_after_ms = 100;
};

// Refusal reasons, as counted by evlog_rejected_requests_total{reason=...} (README "Metrics").
inline constexpr absl::string_view kRefusedInflightBudget = "inflight_budget";
inline constexpr absl::string_view kRefusedConnectionLimit = "connection_limit";

// A snapshot for logs, tests and metrics.
struct AdmissionStats {
  int64_t inflight_bytes = 0;
  int32_t connections = 0;               // connections with produce calls in progress
  int64_t refused_inflight = 0;          // requests refused by the global byte budget
  int64_t refused_connection_bytes = 0;  // requests refused by a connection's byte budget
  int64_t refused_connections = 0;       // calls refused by the connection cap
};

// Thread safety: every method may be called from any thread, including gRPC reactions and the
// storage writer's callbacks; none blocks beyond a short internal lock (never held across a
// call out, the refusal observer included).
class AdmissionController {
 public:
  // One connection's state; opaque. Valid from a successful StartCall until its EndCall.
  class Connection;

  // `clock` is for tests; it must be thread-safe.
  explicit AdmissionController(
      const AdmissionLimits& limits,
      std::function<absl::Time()> clock = [] { return absl::Now(); });
  ~AdmissionController();
  AdmissionController(const AdmissionController&) = delete;
  AdmissionController& operator=(const AdmissionController&) = delete;

  // Admits one produce call (a Produce stream or a ProduceOne) from `peer` (grpc's
  // ServerContext::peer(), e.g. "ipv4:127.0.0.1:53422"). Returns the connection's handle; the
  // caller must pass it to EndCall exactly once when the call ends.
  // Errors: RESOURCE_EXHAUSTED with a retry hint (status_mapping.h) if `peer` has no call in
  // progress and max_connections connections already do.
  absl::StatusOr<Connection*> StartCall(absl::string_view peer);

  // Ends a call started by StartCall. REQUIRES: every byte it charged was released.
  void EndCall(Connection* connection);

  // Charges a request of `bytes` (its serialized size) to the global budget and to its
  // connection's. The caller must Release the same bytes once the request's response is
  // written (or the call ended without writing it).
  // Errors: RESOURCE_EXHAUSTED with a retry hint computed from the budget that refused it;
  // nothing is charged then.
  absl::Status Charge(Connection* connection, int64_t bytes);

  // Gives back bytes charged by Charge.
  void Release(Connection* connection, int64_t bytes);

  // For a RESOURCE_EXHAUSTED from storage (writer queue full) without a retry hint: the same
  // status with a hint computed from the global budget's drain rate (the writer drains the
  // queue at about the rate requests leave the budget). Any other status is returned as is.
  absl::Status HintStorageRefusal(absl::Status status, int64_t bytes);

  // Called with a kRefused* reason after every refusal this controller makes (for metrics).
  // Set it before serving; it must be thread-safe and must not call back into this object.
  void SetRefusalObserver(std::function<void(absl::string_view reason)> observer);

  // Bytes charged now, over all connections.
  int64_t inflight_bytes() const;

  AdmissionStats Stats() const;
  const AdmissionLimits& limits() const { return limits_; }

 private:
  void Refused(absl::string_view reason) const;

  const AdmissionLimits limits_;
  const std::function<absl::Time()> clock_;
  // The part of the global budget only light connections may use, and what counts as light:
  // at most this many bytes in flight, this request included (1/64 of the global budget, so
  // sixteen light connections can fill the reserve).
  const int64_t reserve_;
  const int64_t light_connection_bytes_;
  std::function<void(absl::string_view)> observer_;

  mutable absl::Mutex mu_;
  ByteBudget global_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::unique_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  double refused_connections_recent_ ABSL_GUARDED_BY(mu_) = 0;  // decaying count
  absl::Time last_connection_refusal_ ABSL_GUARDED_BY(mu_);
  AdmissionStats counters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace evlog::server
