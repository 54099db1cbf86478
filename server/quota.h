// Rate quotas at the produce edge: token buckets per topic and per producer (issue #6).
//
// A quota (storage::Quota) limits bytes/s and/or records/s; bytes are record sizes (key +
// value + header keys and values, as in evlog.proto "Sizes"). Settings are stored durably by
// the LogStore; this module holds the live buckets and decides, for each produce request
// before it is appended, whether it may go now.
//
// Token buckets. Each limited dimension of a quota is a bucket that fills at `rate` tokens per
// second up to a capacity of one second of rate: after a quiet second a producer may burst up
// to 1 s worth at once, and over any longer window it gets at most rate x window + capacity.
// A bucket starts full.
//
// Admission. A request needs its record count and byte count from every applicable bucket:
// its topic's (if the topic has a quota) and its producer's (if the request carries a
// producer id > 0 and that producer has its own quota, or a default producer quota is set;
// anonymous requests, producer_id 0, answer to the topic quota only). If every bucket holds
// enough, all are debited at once; if any is short, the request is refused with
// RESOURCE_EXHAUSTED, nothing is taken from any bucket, and the status carries a retry hint
// (status_mapping.h, WithRetryHint): the time until the short bucket holds enough, at least
// 1 ms and at most 10 s. Refusals are immediate; nothing is queued.
//
// Refunds. Quotas count what is appended: an admitted request that then stores nothing (the
// append failed, or was an idempotent duplicate) gets its tokens back (QuotaCharge::Settle).
// Without this, a pipelined idempotent producer whose batch k is refused while batch k+1,
// arriving a moment later, fits would pay for k+1 although storage refuses it as a sequence
// gap, and be held below its quota.
//
// Debt. A batch larger than a bucket's capacity could never be admitted if it had to fit, so
// "enough" means min(need, capacity): a full bucket admits any batch, and the bucket goes
// negative by the excess. The debt is repaid by refill before the next admission, so the
// long-run rate still holds.
//
// Changes. Set*/Remove* change the live buckets at once (the admin service calls them after
// the store accepted a change). A bucket whose rate changes keeps its tokens, clamped to the
// new capacity; a dimension that becomes limited starts full.
//
// Thread safety: every method may be called from any thread. The hot path (Admit) takes a
// reader lock on a map to find the buckets, then each bucket's own mutex (topic bucket before
// producer bucket, always in that order); there is no exclusive global lock. When no quota
// exists at all, Admit returns after one atomic load.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "storage/log_store.h"
#include "storage/record.h"

namespace evlog::server {

// The shortest and longest retry hints given with a quota refusal.
inline constexpr absl::Duration kMinQuotaRetry = absl::Milliseconds(1);
inline constexpr absl::Duration kMaxQuotaRetry = absl::Seconds(10);

// Two token buckets (bytes, records) under one mutex. Exposed for unit tests; QuotaEnforcer
// is what the server uses.
class RateBucket {
 public:
  // A full bucket with `quota`'s rates, as of `now`.
  RateBucket(const storage::Quota& quota, absl::Time now);
  RateBucket(const RateBucket&) = delete;
  RateBucket& operator=(const RateBucket&) = delete;

  // How long until the bucket holds enough for a request, and which dimension is the
  // slower to get there.
  struct Shortfall {
    absl::Duration wait = absl::ZeroDuration();  // zero: it holds enough now
    bool bytes_limited = false;                  // true: bytes/s, false: records/s
  };
  // The shortfall for `records` and `bytes` (min of the need and the capacity, per
  // dimension), refilled as of `now`. Takes nothing.
  Shortfall ShortfallLocked(int64_t records, int64_t bytes, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes `records` and `bytes` (possibly into debt). REQUIRES: ShortfallLocked(...) was just
  // zero under the same lock hold.
  void TakeLocked(int64_t records, int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives back what TakeLocked took, up to the capacity.
  void Refund(int64_t records, int64_t bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // Changes the rates, as described in the header comment.
  void SetQuota(const storage::Quota& quota, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // Single-bucket convenience for tests: Shortfall, then Take if it is zero.
  absl::Duration TryTake(int64_t records, int64_t bytes, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  storage::Quota quota() const ABSL_LOCKS_EXCLUDED(mu_);
  // Tokens now held (negative: debt), after a refill as of `now`. For tests.
  double bytes_available(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  double records_available(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);
  // True if refill has brought every dimension to capacity as of `now` (an idle bucket,
  // equivalent to a new one).
  bool IsFull(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  absl::Mutex& mu() ABSL_LOCK_RETURNED(mu_) { return mu_; }

 private:
  void RefillLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  storage::Quota quota_ ABSL_GUARDED_BY(mu_);
  double bytes_ ABSL_GUARDED_BY(mu_) = 0;    // tokens; capacity = quota_.bytes_per_sec
  double records_ ABSL_GUARDED_BY(mu_) = 0;  // tokens; capacity = quota_.records_per_sec
  absl::Time last_refill_ ABSL_GUARDED_BY(mu_);
};

// What an admitted request took from its buckets. Copyable; holds the buckets alive.
class QuotaCharge {
 public:
  QuotaCharge() = default;
  // Gives the tokens back unless `appended` stored new records (failed, or a duplicate).
  // Call once, from any thread (the store's writer thread, typically); cheap.
  void Settle(const absl::StatusOr<storage::AppendResult>& appended) const;

 private:
  friend class QuotaEnforcer;
  std::shared_ptr<RateBucket> topic_;
  std::shared_ptr<RateBucket> producer_;
  int64_t records_ = 0;
  int64_t bytes_ = 0;
};

class QuotaEnforcer {
 public:
  // `clock` gives the time buckets refill by (injectable for tests).
  explicit QuotaEnforcer(std::function<absl::Time()> clock = [] { return absl::Now(); });

  // Loads every topic's quota and every producer quota from `store` (at server start).
  // Errors: those of the store's DescribeTopic / ListProducerQuotas (a topic deleted while
  // loading is skipped).
  absl::Status Load(const storage::LogStore& store);

  // Sets a topic's quota; an unlimited quota removes its bucket.
  void SetTopicQuota(absl::string_view topic, const storage::Quota& quota);
  // Forgets a topic (deleted).
  void RemoveTopic(absl::string_view topic);
  // Sets a producer's own quota (producer_id > 0), or the default one with
  // storage::kDefaultProducerQuotaId. A producer's own unlimited quota exempts it from the
  // default.
  void SetProducerQuota(int64_t producer_id, const storage::Quota& quota);
  // Removes a producer's own quota (it then falls under the default, if any), or the default.
  void RemoveProducerQuota(int64_t producer_id);

  // Decides whether a request of `records` records and `bytes` bytes to `topic` from
  // `producer_id` (0: anonymous) may be appended now; if so, debits the buckets.
  // Returns what was taken (settle it with the append's outcome), or RESOURCE_EXHAUSTED
  // naming the topic or producer and its quota, with a retry hint attached (RetryHintOf in
  // status_mapping.h).
  absl::StatusOr<QuotaCharge> Admit(absl::string_view topic, int64_t producer_id, int64_t records,
                                    int64_t bytes);

 private:
  // Producers seen under the default quota get buckets of their own; past this many, idle
  // (full) ones are dropped, so a stream of new producer ids cannot grow the map without bound.
  static constexpr size_t kMaxIdleProducerBuckets = 4096;

  std::shared_ptr<RateBucket> FindTopicBucket(absl::string_view topic);
  std::shared_ptr<RateBucket> FindProducerBucket(int64_t producer_id, absl::Time now);
  void UpdateAnyLimits() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::function<absl::Time()> clock_;
  std::atomic<bool> any_limits_{false};  // false: Admit returns OK at once

  absl::Mutex mu_;  // guards the maps, not the buckets
  absl::flat_hash_map<std::string, std::shared_ptr<RateBucket>> topics_ ABSL_GUARDED_BY(mu_);
  // Producers with a quota of their own (unlimited ones included: they are exempt).
  absl::flat_hash_map<int64_t, std::shared_ptr<RateBucket>> own_ ABSL_GUARDED_BY(mu_);
  // Buckets of producers under the default quota, created on first use.
  absl::flat_hash_map<int64_t, std::shared_ptr<RateBucket>> defaulted_ ABSL_GUARDED_BY(mu_);
  storage::Quota default_quota_ ABSL_GUARDED_BY(mu_);
};

// The hook in the produce path: an empty charge if `enforcer` is null, else enforcer->Admit
// with the request's record count and the sum of its records' sizes.
absl::StatusOr<QuotaCharge> AdmitBatch(QuotaEnforcer* enforcer, absl::string_view topic,
                                       int64_t producer_id,
                                       const std::vector<storage::Record>& batch);

}  // namespace evlog::server
