#include "storage/retention.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evlog::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

meta::IndexEntry Entry(int64_t first, int64_t end, uint64_t bytes, int64_t last_append_ms) {
  return {.first_offset = first,
          .end_offset = end,
          .bytes = bytes,
          .last_append_ms = last_append_ms,
          .max_timestamp_ms = last_append_ms};
}

TEST(RetentionTest, NoRetentionKeepsEverything) {
  PartitionRetentionInput p{0, {{1, Entry(0, 10, 100, 0)}, {2, Entry(10, 20, 100, 0)}}};
  RetentionPlan plan = PlanRetention({.partitions = 1}, {p}, {1, 2}, 2, 1'000'000);
  EXPECT_THAT(plan.start_offsets, ElementsAre(0));
  EXPECT_THAT(plan.drop_segments, IsEmpty());
}

TEST(RetentionTest, TimeExpiresSealedSegmentsButNeverTheActiveOne) {
  PartitionRetentionInput p{
      0,
      {{1, Entry(0, 10, 100, 1000)}, {2, Entry(10, 20, 100, 2000)}, {3, Entry(20, 30, 100, 3000)}}};
  TopicConfig config{.partitions = 1, .retention_ms = 500};
  RetentionPlan plan = PlanRetention(config, {p}, {1, 2, 3}, 3, 2400);
  EXPECT_THAT(plan.start_offsets, ElementsAre(10));
  EXPECT_THAT(plan.drop_segments, ElementsAre(1));
  plan = PlanRetention(config, {p}, {1, 2, 3}, 3, 100000);
  EXPECT_THAT(plan.start_offsets, ElementsAre(20));
  EXPECT_THAT(plan.drop_segments, ElementsAre(1, 2));
}

TEST(RetentionTest, BytesKeepAtLeastTheLimit) {
  PartitionRetentionInput p{
      0, {{1, Entry(0, 10, 100, 0)}, {2, Entry(10, 20, 100, 0)}, {3, Entry(20, 30, 100, 0)}}};
  TopicConfig config{.partitions = 1, .retention_bytes = 150};
  RetentionPlan plan = PlanRetention(config, {p}, {1, 2, 3}, 3, 0);
  // 300 bytes: dropping seg 1 leaves 200 >= 150; dropping seg 2 would leave 100 < 150.
  EXPECT_THAT(plan.start_offsets, ElementsAre(10));
  EXPECT_THAT(plan.drop_segments, ElementsAre(1));
}

TEST(RetentionTest, SegmentStaysWhileAnyPartitionCanReadIt) {
  PartitionRetentionInput a{0, {{1, Entry(0, 10, 100, 0)}, {2, Entry(10, 20, 100, 0)}}};
  PartitionRetentionInput b{0, {{1, Entry(0, 5, 10, 0)}, {2, Entry(5, 6, 10, 0)}}};
  TopicConfig config{.partitions = 2, .retention_bytes = 100};
  RetentionPlan plan = PlanRetention(config, {a, b}, {1, 2}, 2, 0);
  EXPECT_THAT(plan.start_offsets, ElementsAre(10, 0));  // b holds only 20 bytes
  EXPECT_THAT(plan.drop_segments, IsEmpty());
}

TEST(RetentionTest, EmptySealedSegmentsAreDropped) {
  PartitionRetentionInput p{5, {{3, Entry(5, 8, 10, 0)}}};
  RetentionPlan plan = PlanRetention({.partitions = 1}, {p}, {1, 2, 3}, 3, 0);
  EXPECT_THAT(plan.drop_segments, ElementsAre(1, 2));
}

}  // namespace
}  // namespace evlog::storage
