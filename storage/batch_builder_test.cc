// BatchBuilder: its output is the format of batch_format.h (the worked example byte for byte),
// decodes to what was added, and can be restamped.
#include "storage/batch_builder.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "storage/batch_codec.h"
#include "storage/batch_format.h"
#include "storage/coding.h"

namespace evlog::storage {
namespace {

TEST(BatchBuilderTest, WorkedExampleOfTheFormatDoc) {
  std::string bytes;
  BatchBuilder b(&bytes);
  b.Add(1000, "k", "v");
  b.Finish(ProducerInfo{}, 0);
  const std::string expected_header_tail =
      std::string("\x40\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00", 12) +
      std::string("\xe8\x03\x00\x00\x00\x00\x00\x00\xe8\x03\x00\x00\x00\x00\x00\x00", 16) +
      std::string(8, '\xff') + std::string("\xff\xff\x00\x00\xff\xff\xff\xff", 8);
  ASSERT_EQ(bytes.size(), 64u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("EVLB\x01\x00\x38\x00", 8));
  EXPECT_EQ(bytes.substr(12, 44), expected_header_tail);
  EXPECT_EQ(bytes.substr(56), std::string("\x07\x00\x00\x01k\x01v\x00", 8));
  ASSERT_TRUE(VerifyBatch(bytes).ok());
}

TEST(BatchBuilderTest, DecodesToWhatWasAddedAndMatchesEncodeBatch) {
  std::vector<Record> records = {
      {.timestamp_ms = 5000, .key = "a", .value = std::string(300, 'x')},
      {.timestamp_ms = 4000, .key = "", .value = "v", .headers = {{"h", "1"}, {"g", ""}}},
      {.timestamp_ms = 9000, .key = "c", .value = ""},
  };
  std::string bytes;
  BatchBuilder b(&bytes, 16);
  size_t expected_size = batch_format::kHeaderSize;
  for (size_t i = 0; i < records.size(); ++i) {
    const Record& r = records[i];
    std::vector<BatchBuilder::Header> headers;
    for (const RecordHeader& h : r.headers) headers.emplace_back(h.key, h.value);
    expected_size +=
        BatchBuilder::EncodedRecordSize(r.timestamp_ms - 5000, i, r.key, r.value, headers);
    b.Add(r.timestamp_ms, r.key, r.value, headers);
  }
  const ProducerInfo producer{.producer_id = 3, .producer_epoch = 2, .base_sequence = 10};
  b.Finish(producer, 0);
  EXPECT_EQ(bytes.size(), expected_size);
  EXPECT_EQ(b.record_count(), 3);
  EXPECT_EQ(bytes, EncodeBatch(records, producer, 0));

  absl::StatusOr<BatchHeader> h = VerifyBatch(bytes);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->first_timestamp_ms, 5000);
  EXPECT_EQ(h->max_timestamp_ms, 9000);
  EXPECT_EQ(h->producer.base_sequence, 10);
  std::vector<Record> out;
  ASSERT_TRUE(DecodeRecords(bytes, 7, 0, 100, &out).ok());
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < out.size(); ++i) {
    records[i].offset = 7 + static_cast<int64_t>(i);
    EXPECT_EQ(out[i], records[i]);
  }

  // Restamped under another producer: a new CRC, still valid.
  b.Finish({.producer_id = 4, .producer_epoch = 0, .base_sequence = 0}, 0);
  h = VerifyBatch(bytes);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(h->producer.producer_id, 4);
}

}  // namespace
}  // namespace evlog::storage
