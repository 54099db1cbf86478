#include "storage/producer_state.h"

#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/log_store.h"

namespace evlog::storage {
namespace {

using ::testing::HasSubstr;

ProducerInfo P(int16_t epoch, int32_t seq) {
  return {.producer_id = 7, .producer_epoch = epoch, .base_sequence = seq};
}

TEST(ProducerStateTest, SequenceRules) {
  EXPECT_EQ(CheckSequence(nullptr, P(0, 5), 1).kind, SequenceVerdict::kAppend);
  ProducerState s;
  RecordAppend(&s, P(0, 0), 3, 100, 1);  // seq 0..2 at offsets 100..102
  RecordAppend(&s, P(0, 3), 2, 110, 2);  // seq 3..4 at 110..111
  EXPECT_EQ(CheckSequence(&s, P(0, 5), 1).kind, SequenceVerdict::kAppend);
  SequenceVerdict dup = CheckSequence(&s, P(0, 0), 3);
  ASSERT_EQ(dup.kind, SequenceVerdict::kDuplicate);
  EXPECT_EQ(dup.original.base_offset, 100);
  SequenceVerdict gap = CheckSequence(&s, P(0, 7), 1);
  ASSERT_EQ(gap.kind, SequenceVerdict::kRefused);
  EXPECT_EQ(gap.error.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(gap.error.message(), HasSubstr("sequence gap"));
  SequenceVerdict odd = CheckSequence(&s, P(0, 1), 1);  // overlaps, not a cached batch
  EXPECT_EQ(odd.error.code(), absl::StatusCode::kAlreadyExists);
  // A newer epoch restarts; the old one is then fenced.
  EXPECT_EQ(CheckSequence(&s, P(1, 0), 1).kind, SequenceVerdict::kAppend);
  RecordAppend(&s, P(1, 0), 1, 120, 3);
  SequenceVerdict fenced = CheckSequence(&s, P(0, 5), 1);
  EXPECT_EQ(fenced.error.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fenced.error.message(), HasSubstr("fenced"));
}

TEST(ProducerStateTest, KeepsOnlyTheLastBatchesAndRoundTrips) {
  ProducerState s;
  for (int i = 0; i < 8; ++i) RecordAppend(&s, P(2, i), 1, 10 + i, 99);
  EXPECT_EQ(s.batches.size(), kMaxCachedBatches);
  EXPECT_EQ(CheckSequence(&s, P(2, 1), 1).error.code(), absl::StatusCode::kAlreadyExists);
  absl::optional<ProducerState> back = DecodeProducerState(EncodeProducerState(s));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->epoch, 2);
  EXPECT_EQ(back->last_append_ms, 99);
  ASSERT_EQ(back->batches.size(), kMaxCachedBatches);
  EXPECT_EQ(back->batches.back().base_offset, 17);
  EXPECT_FALSE(DecodeProducerState("short").has_value());
}

TEST(IdempotentAppendTest, RetriedBatchIsWrittenOnceAcrossRestart) {
  const std::string dir = (std::filesystem::temp_directory_path() /
                           absl::StrCat("evlog_idem_", getpid(), "_", std::random_device()()))
                              .string();
  Options options;
  options.retention_check_interval = absl::ZeroDuration();
  ProducerInfo producer;
  {
    auto store = *LogStore::Open(dir, options);
    ASSERT_TRUE(store->CreateTopic("t", {}).ok());
    producer = *store->InitProducer();
    EXPECT_EQ(producer.producer_id, 1);
    ASSERT_EQ(store->InitProducer()->producer_id, 2);
    producer.base_sequence = 0;
    absl::StatusOr<AppendResult> a =
        store->Append("t", 0, {{.value = "a"}, {.value = "b"}}, producer);
    ASSERT_TRUE(a.ok());
    EXPECT_FALSE(a->duplicate);
    absl::StatusOr<AppendResult> again =
        store->Append("t", 0, {{.value = "a"}, {.value = "b"}}, producer);
    ASSERT_TRUE(again.ok());
    EXPECT_TRUE(again->duplicate);
    EXPECT_EQ(again->base_offset, a->base_offset);
    EXPECT_EQ(again->last_offset, 1);
  }
  auto store = *LogStore::Open(dir, options);
  EXPECT_EQ(store->InitProducer()->producer_id, 3);  // ids are not reused after a restart
  absl::StatusOr<AppendResult> retry =
      store->Append("t", 0, {{.value = "a"}, {.value = "b"}}, producer);
  ASSERT_TRUE(retry.ok());
  EXPECT_TRUE(retry->duplicate);
  producer.base_sequence = 5;
  EXPECT_EQ(store->Append("t", 0, {{.value = "c"}}, producer).status().code(),
            absl::StatusCode::kFailedPrecondition);
  producer.base_sequence = 2;
  absl::StatusOr<AppendResult> next = store->Append("t", 0, {{.value = "c"}}, producer);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->base_offset, 2);
  EXPECT_EQ(store->DescribeTopic("t")->partitions[0].end_offset, 3);
  store.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace evlog::storage
