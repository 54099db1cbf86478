// TakeValidRawBatch: the request-level rules of a produce request carrying a batch, and the
// metrics reason of each refusal. (The format's own checks: storage/batch_validator_test.cc.)
#include "server/raw_batch_validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server_metrics.h"
#include "storage/batch_builder.h"

namespace evlog::server {
namespace {

using ::testing::HasSubstr;

std::string Bytes(const storage::ProducerInfo& producer = {}, int32_t leader_epoch = 0,
                  size_t value_size = 5) {
  std::string bytes;
  storage::BatchBuilder b(&bytes);
  b.Add(1000, "k", std::string(value_size, 'v'));
  b.Add(1001, "k", "w");
  b.Finish(producer, leader_epoch);
  return bytes;
}

evlog::v1::ProduceRequest Request(std::string bytes, int32_t partition = 0) {
  evlog::v1::ProduceRequest r;
  r.set_topic("t");
  r.set_partition(partition);
  r.set_batch(std::move(bytes));
  return r;
}

absl::Status Check(evlog::v1::ProduceRequest request, absl::string_view expected_reason,
                   const EdgeLimits& limits = {}) {
  absl::string_view reason;
  absl::StatusOr<storage::ValidatedBatch> v = TakeValidRawBatch(&request, limits, &reason);
  if (!v.ok()) {
    EXPECT_EQ(reason, expected_reason) << v.status();
  }
  return v.status();
}

void ExpectInvalid(const absl::Status& s, const std::string& words) {
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr(words));
}

TEST(RawBatchValidationTest, AcceptsAPlainAndAnIdempotentBatchAndTakesTheBytes) {
  evlog::v1::ProduceRequest plain = Request(Bytes());
  absl::string_view reason;
  absl::StatusOr<storage::ValidatedBatch> v = TakeValidRawBatch(&plain, {}, &reason);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(v->bytes(), Bytes());
  EXPECT_EQ(v->record_bytes(), 1 + 5 + 1 + 1);
  EXPECT_TRUE(plain.batch().empty());  // moved out
  EXPECT_EQ(plain.topic(), "t");

  evlog::v1::ProduceRequest idem =
      Request(Bytes({.producer_id = 3, .producer_epoch = 2, .base_sequence = 40}), 1);
  idem.set_producer_id(3);
  idem.set_producer_epoch(2);
  idem.set_base_sequence(40);
  EXPECT_TRUE(Check(idem, kRejectInvalid).ok());
}

TEST(RawBatchValidationTest, RefusesRequestLevelMistakes) {
  evlog::v1::ProduceRequest r = Request(Bytes());
  r.set_topic("bad topic");
  ExpectInvalid(Check(r, kRejectInvalid), "invalid topic name");

  r = Request(Bytes());
  r.add_records()->set_value("x");
  ExpectInvalid(Check(r, kRejectInvalid), "both records and batch");

  ExpectInvalid(Check(Request(Bytes(), -1), kRejectInvalid), "name the partition");

  r = Request(Bytes());
  r.set_producer_id(-2);
  ExpectInvalid(Check(r, kRejectInvalid), "producer_id > 0");
  r.set_producer_id(3);
  r.set_producer_epoch(40000);
  ExpectInvalid(Check(r, kRejectInvalid), "producer_epoch in 0..32767");

  ExpectInvalid(Check(Request(Bytes({}, /*leader_epoch=*/3)), kRejectInvalid), "leader_epoch 3");
}

TEST(RawBatchValidationTest, ProducerFieldsMustMatchTheRequest) {
  const storage::ProducerInfo p{.producer_id = 3, .producer_epoch = 2, .base_sequence = 40};
  // Idempotent header, plain request.
  ExpectInvalid(Check(Request(Bytes(p)), kRejectInvalid), "must be equal");
  // Plain header, idempotent request.
  evlog::v1::ProduceRequest r = Request(Bytes());
  r.set_producer_id(3);
  r.set_producer_epoch(2);
  r.set_base_sequence(40);
  ExpectInvalid(Check(r, kRejectInvalid), "must be equal");
  // Each field differing.
  for (storage::ProducerInfo other :
       {storage::ProducerInfo{4, 2, 40}, storage::ProducerInfo{3, 1, 40},
        storage::ProducerInfo{3, 2, 41}}) {
    r.set_batch(Bytes(other));
    ExpectInvalid(Check(r, kRejectInvalid), "must be equal");
  }
}

TEST(RawBatchValidationTest, FormatDefectsAndLimitsAreRefusedWithTheirReason) {
  std::string flipped = Bytes();
  flipped[flipped.size() - 2] ^= 0x10;
  ExpectInvalid(Check(Request(flipped), kRejectInvalid), "CRC32C");
  ExpectInvalid(Check(Request("not a batch at all"), kRejectInvalid), "shorter than");
  const EdgeLimits small{.max_record_bytes = 5, .max_batch_bytes = 1000, .max_batch_records = 1};
  ExpectInvalid(Check(Request(Bytes()), kRejectBatchTooLarge, small), "--max-batch-records 1");
  const EdgeLimits tiny_records{.max_record_bytes = 5};
  ExpectInvalid(Check(Request(Bytes()), kRejectRecordTooLarge, tiny_records),
                "record 0 is 6 bytes");
  const EdgeLimits tiny_batches{.max_batch_bytes = 60};
  ExpectInvalid(Check(Request(Bytes()), kRejectBatchTooLarge, tiny_batches), "at most 60");
}

}  // namespace
}  // namespace evlog::server
