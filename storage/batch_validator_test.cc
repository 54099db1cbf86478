// ValidateBatch: a valid batch passes with the right header and record bytes; every defect is
// refused with INVALID_ARGUMENT and its reason, a single flipped bit included.
#include "storage/batch_validator.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/batch_builder.h"
#include "storage/batch_format.h"
#include "storage/coding.h"
#include "storage/crc32c.h"

namespace evlog::storage {
namespace {

namespace bf = batch_format;
using ::testing::HasSubstr;

// Three records: 10 + 21 + 6 = 37 record bytes.
std::string GoodBatch(const ProducerInfo& producer = {}) {
  std::string bytes;
  BatchBuilder b(&bytes);
  b.Add(1000, "key", "value-7", {{"hk", "hv"}, {"x", "yz"}});  // 3 + 7 + 2+2 + 1+2 = 17
  b.Add(900, "", std::string(21, 'v'));
  b.Add(1500, "k2", "four");
  b.Finish(producer, 0);
  return bytes;
}

// Recomputes the CRC after a test changed bytes behind it, so the framing check is reached.
std::string Reseal(std::string bytes) {
  EncodeFixed32(&bytes[bf::kCrcOffset],
                Crc32c(absl::string_view(bytes).substr(bf::kCrcCoverageStart)));
  return bytes;
}

struct Refusal {
  absl::Status status;
  BatchDefect defect;
};

Refusal Check(std::string bytes, const BatchLimits& limits = {}) {
  BatchDefect defect = BatchDefect::kNone;
  absl::StatusOr<ValidatedBatch> v = ValidateBatch(std::move(bytes), limits, &defect);
  return {v.status(), defect};
}

void ExpectRefused(const Refusal& r, BatchDefect defect, const std::string& words) {
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << r.status;
  EXPECT_EQ(r.defect, defect) << r.status;
  EXPECT_THAT(std::string(r.status.message()), HasSubstr(words));
}

TEST(BatchValidatorTest, AcceptsAGoodBatchAndReportsItsHeaderAndSizes) {
  const std::string bytes = GoodBatch({.producer_id = 5, .producer_epoch = 1, .base_sequence = 3});
  BatchDefect defect = BatchDefect::kMalformed;
  absl::StatusOr<ValidatedBatch> v = ValidateBatch(bytes, {}, &defect);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(defect, BatchDefect::kNone);
  EXPECT_EQ(v->header().record_count, 3);
  EXPECT_EQ(v->header().first_timestamp_ms, 1000);
  EXPECT_EQ(v->header().max_timestamp_ms, 1500);
  EXPECT_EQ(v->header().producer.producer_id, 5);
  EXPECT_EQ(v->record_bytes(), 17 + 21 + 6);
  EXPECT_EQ(v->bytes(), bytes);
  EXPECT_EQ(std::move(*v).TakeBytes(), bytes);
}

TEST(BatchValidatorTest, EveryFlippedBitIsRefused) {
  const std::string good = GoodBatch();
  for (size_t i = 0; i < good.size() * 8; ++i) {
    std::string bad = good;
    bad[i / 8] ^= static_cast<char>(1 << (i % 8));
    Refusal r = Check(bad);
    ASSERT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument) << "bit " << i;
    // After total_length every bit is caught by the CRC, before any framing check.
    if (i / 8 >= bf::kTotalLengthOffset + 4u) {
      EXPECT_EQ(r.defect, BatchDefect::kChecksum) << "bit " << i;
    }
  }
  std::string bad = good;
  bad[60] = 0x7f;
  ExpectRefused(Check(bad), BatchDefect::kChecksum, "CRC32C");
}

TEST(BatchValidatorTest, RefusesBadHeaders) {
  const std::string good = GoodBatch();
  ExpectRefused(Check(good.substr(0, 40)), BatchDefect::kMalformed, "shorter than its");
  std::string bad = good;
  bad[0] = 'X';
  ExpectRefused(Check(bad), BatchDefect::kMalformed, "magic");
  bad = good;
  bad[bf::kVersionOffset] = 2;
  ExpectRefused(Check(bad), BatchDefect::kMalformed, "version");
  bad = good;
  bad[bf::kAttributesOffset] = 1;
  ExpectRefused(Check(bad), BatchDefect::kMalformed, "attributes");
  ExpectRefused(Check(good + "x"), BatchDefect::kMalformed, "total_length");
  ExpectRefused(Check(good.substr(0, good.size() - 1)), BatchDefect::kMalformed, "total_length");
}

TEST(BatchValidatorTest, RefusesBatchesOverTheLimits) {
  const std::string good = GoodBatch();
  ExpectRefused(Check(good, {.max_batch_bytes = static_cast<int64_t>(good.size()) - 1}),
                BatchDefect::kTooLarge, "bytes are allowed");
  ExpectRefused(Check(good, {.max_records = 2}), BatchDefect::kTooLarge, "at most 2");
  ExpectRefused(Check(good, {.max_record_bytes = 20}), BatchDefect::kRecordTooLarge,
                "record 1 is 21 bytes");
  EXPECT_TRUE(Check(good, {.max_batch_bytes = static_cast<int64_t>(good.size()),
                           .max_records = 3,
                           .max_record_bytes = 21})
                  .status.ok());
}

TEST(BatchValidatorTest, RefusesBadRecordCounts) {
  std::string bad = GoodBatch();
  EncodeFixed32(&bad[bf::kRecordCountOffset], 0);
  ExpectRefused(Check(Reseal(bad)), BatchDefect::kMalformed, "no records");
  EncodeFixed32(&bad[bf::kRecordCountOffset], 4);
  ExpectRefused(Check(Reseal(bad)), BatchDefect::kMalformed, "record 3 has a length beyond");
  EncodeFixed32(&bad[bf::kRecordCountOffset], 2);
  ExpectRefused(Check(Reseal(bad)), BatchDefect::kMalformed, "bytes after its last record");
}

TEST(BatchValidatorTest, RefusesBadRecordFraming) {
  const std::string good = GoodBatch();
  const size_t first = bf::kHeaderSize;  // record 0: length, offset delta, timestamp delta...
  std::string bad = good;
  bad[first] = static_cast<char>(static_cast<uint8_t>(bad[first]) + 1);  // length too long
  ExpectRefused(Check(Reseal(bad)), BatchDefect::kMalformed, "record");
  bad = good;
  bad[first + 1] = 1;  // offset delta 1 for record 0
  ExpectRefused(Check(Reseal(bad)), BatchDefect::kMalformed, "offset delta");
  bad = good;
  bad[first + 3] = 9;  // key length 9 > the record
  ExpectRefused(Check(Reseal(bad)), BatchDefect::kMalformed, "malformed key");
  bad = good;
  bad[first + 1 + 1 + 1 + 4 + 8] = 1;  // header count 2 -> 1: bytes left in the record
  ExpectRefused(Check(Reseal(bad)), BatchDefect::kMalformed, "malformed headers");
}

TEST(BatchValidatorTest, RefusesBadTimestamps) {
  std::string bad = GoodBatch();
  EncodeFixed32(&bad[bf::kMaxTimestampOffset], 1400);
  ExpectRefused(Check(Reseal(bad)), BatchDefect::kMalformed, "max_timestamp_ms");
  bad = GoodBatch();
  EncodeFixed32(&bad[bf::kFirstTimestampOffset], 999);
  ExpectRefused(Check(Reseal(bad)), BatchDefect::kMalformed, "max_timestamp_ms");
  bad = GoodBatch();
  bad[bf::kHeaderSize + 2] = 2;  // record 0's timestamp delta != 0
  ExpectRefused(Check(Reseal(bad)), BatchDefect::kMalformed, "first record's timestamp");

  std::string negative;
  BatchBuilder b(&negative);
  b.Add(10, "k", "v");
  b.Add(0, "k", "v");
  b.Finish({}, 0);
  EXPECT_TRUE(Check(negative).status.ok());  // 0 is a timestamp like any other
  negative[bf::kHeaderSize + 8 + 2] = 41;    // record 1: zigzag(-21) -> 10 - 21 < 0
  ExpectRefused(Check(Reseal(negative)), BatchDefect::kMalformed, "timestamps must be >= 0");
}

TEST(BatchValidatorTest, RefusesInconsistentProducerFields) {
  ExpectRefused(Check(GoodBatch({.producer_id = -1, .producer_epoch = 0, .base_sequence = -1})),
                BatchDefect::kMalformed, "all -1");
  ExpectRefused(Check(GoodBatch({.producer_id = 4, .producer_epoch = -1, .base_sequence = 0})),
                BatchDefect::kMalformed, "producer_epoch >= 0");
  ExpectRefused(
      Check(GoodBatch({.producer_id = 4, .producer_epoch = 0, .base_sequence = INT32_MAX - 1})),
      BatchDefect::kMalformed, "2147483647");
  EXPECT_TRUE(
      Check(GoodBatch({.producer_id = 4, .producer_epoch = 0, .base_sequence = INT32_MAX - 2}))
          .status.ok());
}

}  // namespace
}  // namespace evlog::storage
