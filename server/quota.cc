// Token buckets and the quota enforcer; the design (capacity, debt, admission) is in quota.h.
#include "server/quota.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/status_mapping.h"

namespace evlog::server {
namespace {

// Time for a bucket of `rate` tokens/s holding `have` to reach `want`.
absl::Duration TimeToReach(double have, double want, int64_t rate) {
  if (have >= want) return absl::ZeroDuration();
  return absl::Seconds((want - have) / static_cast<double>(rate));
}

// Refills one dimension: `tokens` grows by rate x elapsed, up to the capacity (= rate).
void Refill(double* tokens, int64_t rate, absl::Duration elapsed) {
  if (rate <= 0) return;
  *tokens = std::min(static_cast<double>(rate),
                     *tokens + static_cast<double>(rate) * absl::ToDoubleSeconds(elapsed));
}

// The wait a refused request is told: at least 1 ms, at most 10 s.
absl::Duration ClampRetry(absl::Duration wait) {
  return std::clamp(absl::Ceil(wait, absl::Milliseconds(1)), kMinQuotaRetry, kMaxQuotaRetry);
}

std::string DescribeLimit(const storage::Quota& quota, bool bytes_limited) {
  return bytes_limited ? absl::StrCat(quota.bytes_per_sec, " bytes/s")
                       : absl::StrCat(quota.records_per_sec, " records/s");
}

}  // namespace

RateBucket::RateBucket(const storage::Quota& quota, absl::Time now)
    : quota_(quota),
      bytes_(static_cast<double>(quota.bytes_per_sec)),
      records_(static_cast<double>(quota.records_per_sec)),
      last_refill_(now) {}

void RateBucket::RefillLocked(absl::Time now) {
  if (now <= last_refill_) return;  // a clock that steps back never drains a bucket
  const absl::Duration elapsed = now - last_refill_;
  Refill(&bytes_, quota_.bytes_per_sec, elapsed);
  Refill(&records_, quota_.records_per_sec, elapsed);
  last_refill_ = now;
}

RateBucket::Shortfall RateBucket::ShortfallLocked(int64_t records, int64_t bytes, absl::Time now) {
  RefillLocked(now);
  Shortfall out;
  // Asking for at most the capacity is what lets a batch larger than the capacity through
  // (into debt) once the bucket is full.
  if (quota_.bytes_per_sec > 0) {
    const double want = std::min<double>(static_cast<double>(bytes), quota_.bytes_per_sec);
    const absl::Duration wait = TimeToReach(bytes_, want, quota_.bytes_per_sec);
    if (wait > out.wait) out = {wait, true};
  }
  if (quota_.records_per_sec > 0) {
    const double want = std::min<double>(static_cast<double>(records), quota_.records_per_sec);
    const absl::Duration wait = TimeToReach(records_, want, quota_.records_per_sec);
    if (wait > out.wait) out = {wait, false};
  }
  return out;
}

void RateBucket::TakeLocked(int64_t records, int64_t bytes) {
  if (quota_.bytes_per_sec > 0) bytes_ -= static_cast<double>(bytes);
  if (quota_.records_per_sec > 0) records_ -= static_cast<double>(records);
}

void RateBucket::SetQuota(const storage::Quota& quota, absl::Time now) {
  absl::MutexLock l(&mu_);
  RefillLocked(now);
  auto update = [](double* tokens, int64_t old_rate, int64_t new_rate) {
    if (new_rate <= 0) {
      *tokens = 0;
    } else if (old_rate <= 0) {
      *tokens = static_cast<double>(new_rate);  // newly limited: start full
    } else {
      *tokens = std::min(*tokens, static_cast<double>(new_rate));  // debt is kept
    }
  };
  update(&bytes_, quota_.bytes_per_sec, quota.bytes_per_sec);
  update(&records_, quota_.records_per_sec, quota.records_per_sec);
  quota_ = quota;
}

void RateBucket::Refund(int64_t records, int64_t bytes) {
  absl::MutexLock l(&mu_);
  if (quota_.bytes_per_sec > 0) {
    bytes_ = std::min<double>(bytes_ + static_cast<double>(bytes), quota_.bytes_per_sec);
  }
  if (quota_.records_per_sec > 0) {
    records_ = std::min<double>(records_ + static_cast<double>(records), quota_.records_per_sec);
  }
}

void QuotaCharge::Settle(const absl::StatusOr<storage::AppendResult>& appended) const {
  if (appended.ok() && !appended->duplicate) return;
  if (topic_ != nullptr) topic_->Refund(records_, bytes_);
  if (producer_ != nullptr) producer_->Refund(records_, bytes_);
}

absl::Duration RateBucket::TryTake(int64_t records, int64_t bytes, absl::Time now) {
  absl::MutexLock l(&mu_);
  const Shortfall shortfall = ShortfallLocked(records, bytes, now);
  if (shortfall.wait == absl::ZeroDuration()) TakeLocked(records, bytes);
  return shortfall.wait;
}

storage::Quota RateBucket::quota() const {
  absl::MutexLock l(&mu_);
  return quota_;
}

double RateBucket::bytes_available(absl::Time now) {
  absl::MutexLock l(&mu_);
  RefillLocked(now);
  return bytes_;
}

double RateBucket::records_available(absl::Time now) {
  absl::MutexLock l(&mu_);
  RefillLocked(now);
  return records_;
}

bool RateBucket::IsFull(absl::Time now) {
  absl::MutexLock l(&mu_);
  RefillLocked(now);
  return bytes_ >= static_cast<double>(quota_.bytes_per_sec) &&
         records_ >= static_cast<double>(quota_.records_per_sec);
}

QuotaEnforcer::QuotaEnforcer(std::function<absl::Time()> clock) : clock_(std::move(clock)) {}

absl::Status QuotaEnforcer::Load(const storage::LogStore& store) {
  for (const std::string& name : store.ListTopics()) {
    absl::StatusOr<storage::TopicInfo> info = store.DescribeTopic(name);
    if (absl::IsNotFound(info.status())) continue;
    if (!info.ok()) return info.status();
    SetTopicQuota(name, info->config.quota);
  }
  absl::StatusOr<std::vector<storage::ProducerQuota>> producers = store.ListProducerQuotas();
  if (!producers.ok()) return producers.status();
  for (const storage::ProducerQuota& p : *producers) SetProducerQuota(p.producer_id, p.quota);
  return absl::OkStatus();
}

void QuotaEnforcer::UpdateAnyLimits() {
  any_limits_.store(!topics_.empty() || !default_quota_.unlimited() ||
                        std::any_of(own_.begin(), own_.end(),
                                    [](const auto& e) { return !e.second->quota().unlimited(); }),
                    std::memory_order_release);
}

void QuotaEnforcer::SetTopicQuota(absl::string_view topic, const storage::Quota& quota) {
  const absl::Time now = clock_();
  absl::MutexLock l(&mu_);
  auto it = topics_.find(topic);
  if (quota.unlimited()) {
    if (it != topics_.end()) topics_.erase(it);
  } else if (it == topics_.end()) {
    topics_.emplace(std::string(topic), std::make_shared<RateBucket>(quota, now));
  } else {
    it->second->SetQuota(quota, now);
  }
  UpdateAnyLimits();
}

void QuotaEnforcer::RemoveTopic(absl::string_view topic) {
  absl::MutexLock l(&mu_);
  topics_.erase(topic);
  UpdateAnyLimits();
}

void QuotaEnforcer::SetProducerQuota(int64_t producer_id, const storage::Quota& quota) {
  const absl::Time now = clock_();
  absl::MutexLock l(&mu_);
  if (producer_id == storage::kDefaultProducerQuotaId) {
    default_quota_ = quota;
    if (quota.unlimited()) {
      defaulted_.clear();
    } else {
      for (auto& [id, bucket] : defaulted_) bucket->SetQuota(quota, now);
    }
  } else {
    // A producer that had a default bucket keeps its tokens (and debt) under its own quota.
    std::shared_ptr<RateBucket> bucket;
    if (auto d = defaulted_.find(producer_id); d != defaulted_.end()) {
      bucket = d->second;
      defaulted_.erase(d);
    }
    auto [it, inserted] = own_.try_emplace(producer_id, bucket);
    if (it->second == nullptr) {
      it->second = std::make_shared<RateBucket>(quota, now);
    } else {
      it->second->SetQuota(quota, now);
    }
  }
  UpdateAnyLimits();
}

void QuotaEnforcer::RemoveProducerQuota(int64_t producer_id) {
  absl::MutexLock l(&mu_);
  if (producer_id == storage::kDefaultProducerQuotaId) {
    default_quota_ = {};
    defaulted_.clear();
  } else {
    own_.erase(producer_id);
  }
  UpdateAnyLimits();
}

std::shared_ptr<RateBucket> QuotaEnforcer::FindTopicBucket(absl::string_view topic) {
  absl::ReaderMutexLock l(&mu_);
  auto it = topics_.find(topic);
  return it == topics_.end() ? nullptr : it->second;
}

std::shared_ptr<RateBucket> QuotaEnforcer::FindProducerBucket(int64_t producer_id, absl::Time now) {
  if (producer_id <= 0) return nullptr;  // anonymous: the topic quota only
  {
    absl::ReaderMutexLock l(&mu_);
    if (auto it = own_.find(producer_id); it != own_.end()) {
      return it->second->quota().unlimited() ? nullptr : it->second;
    }
    if (default_quota_.unlimited()) return nullptr;
    if (auto it = defaulted_.find(producer_id); it != defaulted_.end()) return it->second;
  }
  // First request of this producer under the default quota: give it a bucket.
  absl::MutexLock l(&mu_);
  if (auto it = own_.find(producer_id); it != own_.end()) {
    return it->second->quota().unlimited() ? nullptr : it->second;
  }
  if (default_quota_.unlimited()) return nullptr;
  if (defaulted_.size() >= kMaxIdleProducerBuckets) {
    // An idle (full) bucket is the same as a new one: dropping it changes no decision.
    absl::erase_if(defaulted_, [now](const auto& e) { return e.second->IsFull(now); });
  }
  auto [it, inserted] =
      defaulted_.try_emplace(producer_id, std::make_shared<RateBucket>(default_quota_, now));
  return it->second;
}

absl::StatusOr<QuotaCharge> QuotaEnforcer::Admit(absl::string_view topic, int64_t producer_id,
                                                 int64_t records, int64_t bytes) {
  if (!any_limits_.load(std::memory_order_acquire)) return QuotaCharge();
  const absl::Time now = clock_();
  std::shared_ptr<RateBucket> topic_bucket = FindTopicBucket(topic);
  std::shared_ptr<RateBucket> producer_bucket = FindProducerBucket(producer_id, now);
  if (topic_bucket == nullptr && producer_bucket == nullptr) return QuotaCharge();

  // Lock order: topic bucket, then producer bucket (distinct objects, so never the same one).
  RateBucket::Shortfall topic_short, producer_short;
  {
    absl::Mutex* first = topic_bucket != nullptr ? &topic_bucket->mu() : nullptr;
    absl::Mutex* second = producer_bucket != nullptr ? &producer_bucket->mu() : nullptr;
    if (first != nullptr) first->Lock();
    if (second != nullptr) second->Lock();
    if (topic_bucket != nullptr) {
      topic_short = topic_bucket->ShortfallLocked(records, bytes, now);
    }
    if (producer_bucket != nullptr) {
      producer_short = producer_bucket->ShortfallLocked(records, bytes, now);
    }
    const bool admitted =
        topic_short.wait == absl::ZeroDuration() && producer_short.wait == absl::ZeroDuration();
    if (admitted) {
      if (topic_bucket != nullptr) topic_bucket->TakeLocked(records, bytes);
      if (producer_bucket != nullptr) producer_bucket->TakeLocked(records, bytes);
    }
    if (second != nullptr) second->Unlock();
    if (first != nullptr) first->Unlock();
    if (admitted) {
      QuotaCharge charge;
      charge.topic_ = std::move(topic_bucket);
      charge.producer_ = std::move(producer_bucket);
      charge.records_ = records;
      charge.bytes_ = bytes;
      return charge;
    }
  }
  // Refused: name the bucket that needs longer (both must be satisfied), outside the locks.
  const bool topic_slower = topic_short.wait >= producer_short.wait;
  const absl::Duration retry = ClampRetry(topic_slower ? topic_short.wait : producer_short.wait);
  const int64_t retry_ms = absl::ToInt64Milliseconds(retry);
  std::string message;
  if (topic_slower) {
    message = absl::StrCat("topic ", topic, " is over its quota of ",
                           DescribeLimit(topic_bucket->quota(), topic_short.bytes_limited),
                           "; retry in ", retry_ms, " ms");
  } else {
    message = absl::StrCat("producer ", producer_id, " is over its quota of ",
                           DescribeLimit(producer_bucket->quota(), producer_short.bytes_limited),
                           "; retry in ", retry_ms, " ms");
  }
  return WithRetryHint(absl::ResourceExhaustedError(message), retry_ms);
}

absl::StatusOr<QuotaCharge> AdmitBatch(QuotaEnforcer* enforcer, absl::string_view topic,
                                       int64_t producer_id,
                                       const std::vector<storage::Record>& batch) {
  if (enforcer == nullptr) return QuotaCharge();
  int64_t bytes = 0;
  for (const storage::Record& r : batch) {
    bytes += static_cast<int64_t>(r.key.size() + r.value.size());
    for (const storage::RecordHeader& h : r.headers) {
      bytes += static_cast<int64_t>(h.key.size() + h.value.size());
    }
  }
  return enforcer->Admit(topic, producer_id, static_cast<int64_t>(batch.size()), bytes);
}

}  // namespace evlog::server
