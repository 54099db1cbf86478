#include "storage/batch_codec.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/batch_format.h"
#include "storage/crc32c.h"

namespace evlog::storage {
namespace {

std::vector<Record> SampleRecords() {
  std::vector<Record> r(3);
  r[0] = {.timestamp_ms = 1000, .key = "k", .value = "v"};
  r[1] = {.timestamp_ms = 990,
          .key = "",
          .value = std::string(300, 'x'),
          .headers = {{"h1", "a"}, {"h2", std::string("\0\1", 2)}}};
  r[2] = {.timestamp_ms = 5000, .key = "key3", .value = ""};
  return r;
}

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(BatchCodecTest, RoundTripsRecordsWithOffsetsAndHeaders) {
  const std::vector<Record> in = SampleRecords();
  const std::string batch = EncodeBatch(
      in, {.producer_id = 7, .producer_epoch = 2, .base_sequence = 40}, /*leader_epoch=*/3);
  absl::StatusOr<BatchHeader> h = VerifyBatch(batch);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->record_count, 3);
  EXPECT_EQ(h->leader_epoch, 3);
  EXPECT_EQ(h->first_timestamp_ms, 1000);
  EXPECT_EQ(h->max_timestamp_ms, 5000);
  EXPECT_EQ(h->producer.producer_id, 7);
  EXPECT_EQ(h->producer.producer_epoch, 2);
  EXPECT_EQ(h->producer.base_sequence, 40);

  std::vector<Record> out;
  ASSERT_TRUE(DecodeRecords(batch, 100, 0, 1000, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    Record want = in[i];
    want.offset = 100 + i;
    EXPECT_EQ(out[i], want) << i;
  }
}

TEST(BatchCodecTest, DecodeHonoursMinOffsetAndMaxRecords) {
  const std::string batch = EncodeBatch(SampleRecords(), {}, 0);
  std::vector<Record> out;
  ASSERT_TRUE(DecodeRecords(batch, 10, 11, 1, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].offset, 11);
}

TEST(BatchCodecTest, MatchesTheWorkedExampleOfTheFormatHeader) {
  const std::string batch = EncodeBatch({{.timestamp_ms = 1000, .key = "k", .value = "v"}}, {}, 0);
  ASSERT_EQ(batch.size(), 64u);
  EXPECT_EQ(batch.substr(0, 4), "EVLB");
  EXPECT_EQ(batch[12], '\x40');  // total_length
  EXPECT_EQ(batch.substr(56), std::string("\x07\x00\x00\x01k\x01v\x00", 8));
}

TEST(BatchCodecTest, EveryFlippedBitIsReportedAsDataLoss) {
  const std::string batch = EncodeBatch(SampleRecords(), {}, 0);
  for (size_t i = 0; i < batch.size(); ++i) {
    for (int bit = 0; bit < 8; bit += 3) {
      std::string bad = batch;
      bad[i] ^= static_cast<char>(1 << bit);
      EXPECT_EQ(VerifyBatch(bad).status().code(), absl::StatusCode::kDataLoss)
          << "byte " << i << " bit " << bit;
    }
  }
}

TEST(BatchCodecTest, TruncatedOrExtendedBatchIsDataLoss) {
  const std::string batch = EncodeBatch(SampleRecords(), {}, 0);
  EXPECT_EQ(VerifyBatch(batch.substr(0, 20)).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(VerifyBatch(batch.substr(0, batch.size() - 1)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(VerifyBatch(batch + "x").status().code(), absl::StatusCode::kDataLoss);
}

TEST(BatchCodecTest, FindTimestampReturnsFirstRecordAtOrAfter) {
  const std::string batch = EncodeBatch(SampleRecords(), {}, 0);  // ts 1000, 990, 5000
  EXPECT_EQ(*FindTimestamp(batch, 50, 0), 50);
  EXPECT_EQ(*FindTimestamp(batch, 50, 1000), 50);
  EXPECT_EQ(*FindTimestamp(batch, 50, 1001), 52);
  EXPECT_EQ(*FindTimestamp(batch, 50, 5001), -1);
}

}  // namespace
}  // namespace evlog::storage
