// Unit tests of the token buckets and the quota enforcer (quota.h), on a fake clock: what is
// admitted, what is refused with which retry hint, refill, debt, and live quota changes.
#include "server/quota.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/status_mapping.h"

namespace evlog::server {
namespace {

using ::testing::HasSubstr;

const absl::Time kStart = absl::FromUnixSeconds(1'700'000'000);

// A clock the test moves by hand (single-threaded tests).
struct FakeClock {
  absl::Time now = kStart;
  std::function<absl::Time()> fn() {
    return [this] { return now; };
  }
};

TEST(RateBucketTest, AdmitsUpToCapacityThenRefusesWithTimeToRefill) {
  RateBucket bucket({.bytes_per_sec = 0, .records_per_sec = 1000}, kStart);
  // Capacity is one second of rate: 1000 records at once.
  EXPECT_EQ(bucket.TryTake(600, 0, kStart), absl::ZeroDuration());
  EXPECT_EQ(bucket.TryTake(400, 0, kStart), absl::ZeroDuration());
  // Empty: 100 records need 100 ms of refill.
  EXPECT_EQ(bucket.TryTake(100, 0, kStart), absl::Milliseconds(100));
  // A refusal takes nothing.
  EXPECT_DOUBLE_EQ(bucket.records_available(kStart), 0.0);
}

TEST(RateBucketTest, RefillsWithElapsedTimeUpToCapacity) {
  RateBucket bucket({.bytes_per_sec = 1000, .records_per_sec = 0}, kStart);
  ASSERT_EQ(bucket.TryTake(1, 1000, kStart), absl::ZeroDuration());
  EXPECT_DOUBLE_EQ(bucket.bytes_available(kStart + absl::Milliseconds(250)), 250.0);
  EXPECT_EQ(bucket.TryTake(1, 250, kStart + absl::Milliseconds(250)), absl::ZeroDuration());
  // Never beyond capacity, however long it idles.
  EXPECT_DOUBLE_EQ(bucket.bytes_available(kStart + absl::Hours(1)), 1000.0);
  EXPECT_TRUE(bucket.IsFull(kStart + absl::Hours(1)));
}

TEST(RateBucketTest, BatchLargerThanCapacityIsAdmittedWhenFullAndLeavesDebt) {
  RateBucket bucket({.bytes_per_sec = 1000, .records_per_sec = 0}, kStart);
  // 3000 bytes can never fit a 1000-byte bucket; a full bucket admits it anyway.
  EXPECT_EQ(bucket.TryTake(1, 3000, kStart), absl::ZeroDuration());
  EXPECT_DOUBLE_EQ(bucket.bytes_available(kStart), -2000.0);
  // The debt is repaid before anything else goes: 10 bytes wait 2.01 s.
  EXPECT_EQ(bucket.TryTake(1, 10, kStart), absl::Milliseconds(2010));
  // Another oversized batch waits until the bucket is full again (3 s after the first).
  EXPECT_EQ(bucket.TryTake(1, 3000, kStart + absl::Seconds(2)), absl::Seconds(1));
  EXPECT_EQ(bucket.TryTake(1, 3000, kStart + absl::Seconds(3)), absl::ZeroDuration());
}

TEST(RateBucketTest, LongRunRateEqualsTheQuota) {
  // A sender that retries exactly when told admits rate x time + the initial burst.
  RateBucket bucket({.bytes_per_sec = 0, .records_per_sec = 2000}, kStart);
  absl::Time now = kStart;
  int64_t admitted = 0;
  while (now < kStart + absl::Seconds(10)) {
    const absl::Duration wait = bucket.TryTake(300, 0, now);
    if (wait == absl::ZeroDuration()) {
      admitted += 300;
    } else {
      now += wait;
    }
  }
  EXPECT_NEAR(admitted, 2000 * 10 + 2000, 300);
}

TEST(RateBucketTest, BothDimensionsMustHoldEnoughAndTheSlowerOneSetsTheWait) {
  RateBucket bucket({.bytes_per_sec = 1000, .records_per_sec = 10}, kStart);
  ASSERT_EQ(bucket.TryTake(10, 100, kStart), absl::ZeroDuration());  // records now empty
  absl::MutexLock l(&bucket.mu());
  const RateBucket::Shortfall s = bucket.ShortfallLocked(5, 100, kStart);
  EXPECT_EQ(s.wait, absl::Milliseconds(500));
  EXPECT_FALSE(s.bytes_limited);
}

TEST(RateBucketTest, SetQuotaClampsTokensAndKeepsDebt) {
  RateBucket bucket({.bytes_per_sec = 1000, .records_per_sec = 0}, kStart);
  bucket.SetQuota({.bytes_per_sec = 100, .records_per_sec = 0}, kStart);
  EXPECT_DOUBLE_EQ(bucket.bytes_available(kStart), 100.0);
  ASSERT_EQ(bucket.TryTake(1, 500, kStart), absl::ZeroDuration());  // debt: -400
  bucket.SetQuota({.bytes_per_sec = 200, .records_per_sec = 50}, kStart);
  EXPECT_DOUBLE_EQ(bucket.bytes_available(kStart), -400.0);
  EXPECT_DOUBLE_EQ(bucket.records_available(kStart), 50.0);  // newly limited: full
}

TEST(QuotaEnforcerTest, NoQuotasAdmitsEverything) {
  FakeClock clock;
  QuotaEnforcer q(clock.fn());
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(q.Admit("t", 5, 1 << 20, 1 << 30).ok());
}

TEST(QuotaEnforcerTest, TopicOverQuotaIsRefusedWithMessageAndRetryHint) {
  FakeClock clock;
  QuotaEnforcer q(clock.fn());
  q.SetTopicQuota("t", {.bytes_per_sec = 0, .records_per_sec = 2000});
  ASSERT_TRUE(q.Admit("t", 0, 2000, 10).ok());
  absl::Status s = q.Admit("t", 0, 500, 10).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("topic t is over its quota of 2000 records/s"));
  EXPECT_THAT(s.message(), HasSubstr("retry in 250 ms"));
  EXPECT_EQ(RetryHintOf(s), 250);
  // Other topics are not limited.
  EXPECT_TRUE(q.Admit("u", 0, 100000, 10).ok());
  clock.now += absl::Milliseconds(250);
  EXPECT_TRUE(q.Admit("t", 0, 500, 10).ok());
}

TEST(QuotaEnforcerTest, RetryHintIsAtLeastOneMsAndAtMostTenSeconds) {
  FakeClock clock;
  QuotaEnforcer q(clock.fn());
  q.SetTopicQuota("t", {.bytes_per_sec = 1, .records_per_sec = 0});
  ASSERT_TRUE(q.Admit("t", 0, 1, 1000).ok());  // debt of 999 s
  EXPECT_EQ(RetryHintOf(q.Admit("t", 0, 1, 1).status()), 10000);
  q.SetTopicQuota("fast", {.bytes_per_sec = 1'000'000'000, .records_per_sec = 0});
  ASSERT_TRUE(q.Admit("fast", 0, 1, 1'000'000'000).ok());
  EXPECT_EQ(RetryHintOf(q.Admit("fast", 0, 1, 1).status()), 1);  // 1 ns away, rounded up to 1 ms
}

TEST(QuotaEnforcerTest, ProducerQuotaLimitsOnlyThatProducer) {
  FakeClock clock;
  QuotaEnforcer q(clock.fn());
  q.SetProducerQuota(7, {.bytes_per_sec = 100, .records_per_sec = 0});
  ASSERT_TRUE(q.Admit("t", 7, 1, 100).ok());
  absl::Status s = q.Admit("t", 7, 1, 50).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("producer 7 is over its quota of 100 bytes/s"));
  EXPECT_EQ(RetryHintOf(s), 500);
  // Across topics too, but not other producers nor anonymous requests.
  EXPECT_FALSE(q.Admit("other", 7, 1, 50).ok());
  EXPECT_TRUE(q.Admit("t", 8, 1, 100000).ok());
  EXPECT_TRUE(q.Admit("t", 0, 1, 100000).ok());
  q.RemoveProducerQuota(7);
  EXPECT_TRUE(q.Admit("t", 7, 1, 100000).ok());
}

TEST(QuotaEnforcerTest, RefusalByOneBucketTakesNothingFromTheOther) {
  FakeClock clock;
  QuotaEnforcer q(clock.fn());
  q.SetTopicQuota("t", {.bytes_per_sec = 0, .records_per_sec = 100});
  q.SetProducerQuota(3, {.bytes_per_sec = 0, .records_per_sec = 10});
  ASSERT_TRUE(q.Admit("t", 3, 10, 1).ok());  // producer bucket now empty
  EXPECT_FALSE(q.Admit("t", 3, 10, 1).ok());
  EXPECT_FALSE(q.Admit("t", 3, 10, 1).ok());
  // The topic bucket lost only the admitted 10: 90 remain for others.
  EXPECT_TRUE(q.Admit("t", 0, 90, 1).ok());
  EXPECT_FALSE(q.Admit("t", 0, 1, 1).ok());
}

TEST(QuotaEnforcerTest, DefaultProducerQuotaGivesEachProducerItsOwnBucket) {
  FakeClock clock;
  QuotaEnforcer q(clock.fn());
  q.SetProducerQuota(storage::kDefaultProducerQuotaId, {.bytes_per_sec = 0, .records_per_sec = 5});
  EXPECT_TRUE(q.Admit("t", 1, 5, 1).ok());
  EXPECT_FALSE(q.Admit("t", 1, 5, 1).ok());
  EXPECT_TRUE(q.Admit("t", 2, 5, 1).ok());   // a separate bucket
  EXPECT_TRUE(q.Admit("t", 0, 50, 1).ok());  // anonymous: no producer quota
  // A producer's own unlimited quota exempts it from the default.
  q.SetProducerQuota(1, {});
  EXPECT_TRUE(q.Admit("t", 1, 500, 1).ok());
}

TEST(QuotaEnforcerTest, AlteringAndRemovingTopicQuotaTakesEffectAtOnce) {
  FakeClock clock;
  QuotaEnforcer q(clock.fn());
  q.SetTopicQuota("t", {.bytes_per_sec = 10, .records_per_sec = 0});
  ASSERT_TRUE(q.Admit("t", 0, 1, 10).ok());
  EXPECT_FALSE(q.Admit("t", 0, 1, 10).ok());
  q.SetTopicQuota("t", {});  // unlimited
  EXPECT_TRUE(q.Admit("t", 0, 1, 1 << 20).ok());
  q.SetTopicQuota("t", {.bytes_per_sec = 10, .records_per_sec = 0});
  ASSERT_TRUE(q.Admit("t", 0, 1, 10).ok());
  q.RemoveTopic("t");
  EXPECT_TRUE(q.Admit("t", 0, 1, 1 << 20).ok());
}

TEST(QuotaEnforcerTest, ChargeOfAnAppendThatStoredNothingIsRefunded) {
  FakeClock clock;
  QuotaEnforcer q(clock.fn());
  q.SetTopicQuota("t", {.bytes_per_sec = 0, .records_per_sec = 100});
  q.SetProducerQuota(9, {.bytes_per_sec = 0, .records_per_sec = 100});
  // Stored: nothing comes back.
  absl::StatusOr<QuotaCharge> stored = q.Admit("t", 9, 60, 1);
  ASSERT_TRUE(stored.ok());
  stored->Settle(storage::AppendResult{});
  // Refused by storage (e.g. a sequence gap) and a duplicate: both give their tokens back.
  absl::StatusOr<QuotaCharge> gap = q.Admit("t", 9, 40, 1);
  ASSERT_TRUE(gap.ok());
  EXPECT_FALSE(q.Admit("t", 9, 40, 1).ok());
  gap->Settle(absl::FailedPreconditionError("sequence gap"));
  absl::StatusOr<QuotaCharge> dup = q.Admit("t", 9, 40, 1);
  ASSERT_TRUE(dup.ok());
  dup->Settle(storage::AppendResult{.duplicate = true});
  EXPECT_TRUE(q.Admit("t", 9, 40, 1).ok());  // the 40 not stored are available again
  EXPECT_FALSE(q.Admit("t", 0, 1, 1).ok());  // and no more: 60 + 40 stored
}

TEST(QuotaEnforcerTest, AdmitBatchCountsRecordSizes) {
  FakeClock clock;
  QuotaEnforcer q(clock.fn());
  q.SetTopicQuota("t", {.bytes_per_sec = 20, .records_per_sec = 0});
  const std::string nine(9, 'x');
  std::vector<storage::Record> batch(2);
  batch[0].key = std::string(1, 'k');  // key + value: 10 bytes
  batch[0].value = nine;
  batch[1].headers.push_back({std::string(1, 'h'), nine});  // header key + value: 10 bytes
  EXPECT_TRUE(AdmitBatch(&q, "t", 0, batch).ok());
  EXPECT_FALSE(AdmitBatch(&q, "t", 0, batch).ok());
  EXPECT_TRUE(AdmitBatch(nullptr, "t", 0, batch).ok());
}

}  // namespace
}  // namespace evlog::server
