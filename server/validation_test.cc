// Tests of edge validation: each check gives INVALID_ARGUMENT, and a valid batch is converted.
#include "server/validation.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evlog::server {
namespace {

using ::testing::HasSubstr;

evlog::v1::ProduceRequest Request(int records, const std::string& value = "v") {
  evlog::v1::ProduceRequest request;
  request.set_topic("orders");
  request.set_partition(0);
  for (int i = 0; i < records; ++i) {
    evlog::v1::Record* r = request.add_records();
    r->set_key("k");
    r->set_value(value);
  }
  return request;
}

TEST(ValidateTopicNameTest, AcceptsAllowedCharacters) {
  EXPECT_TRUE(ValidateTopicName("a.b_c-D9").ok());
  EXPECT_TRUE(ValidateTopicName(std::string(249, 'x')).ok());
}

TEST(ValidateTopicNameTest, RejectsEmptyLongAndBadCharacters) {
  for (const std::string& name : {std::string(), std::string(250, 'x'), std::string("a b"),
                                  std::string("a/b"), std::string("é")}) {
    absl::Status s = ValidateTopicName(name);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_THAT(std::string(s.message()), HasSubstr("[A-Za-z0-9._-]"));
  }
}

TEST(TakeValidBatchTest, ConvertsRecordsAndServerTime) {
  evlog::v1::ProduceRequest request = Request(2);
  request.mutable_records(1)->set_timestamp_ms(1700000000000);
  evlog::v1::Header* h = request.mutable_records(0)->add_headers();
  h->set_key("h");
  h->set_value(std::string("\0\1", 2));
  auto batch = TakeValidBatch(&request, EdgeLimits{});
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->size(), 2u);
  EXPECT_EQ((*batch)[0].timestamp_ms, -1);  // 0 on the wire = server time
  EXPECT_EQ((*batch)[1].timestamp_ms, 1700000000000);
  EXPECT_EQ((*batch)[0].key, "k");
  ASSERT_EQ((*batch)[0].headers.size(), 1u);
  EXPECT_EQ((*batch)[0].headers[0].value, std::string("\0\1", 2));
}

TEST(TakeValidBatchTest, RejectsEmptyBatch) {
  evlog::v1::ProduceRequest request = Request(0);
  auto batch = TakeValidBatch(&request, EdgeLimits{});
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(batch.status().message()), HasSubstr("empty batch"));
}

TEST(TakeValidBatchTest, RejectsPartitionBelowMinusOne) {
  evlog::v1::ProduceRequest request = Request(1);
  request.set_partition(-2);
  EXPECT_EQ(TakeValidBatch(&request, EdgeLimits{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TakeValidBatchTest, RejectsOversizedRecordButAcceptsExactLimit) {
  EdgeLimits limits;
  limits.max_record_bytes = 100;
  evlog::v1::ProduceRequest ok = Request(1, std::string(99, 'x'));  // key "k" + 99
  EXPECT_TRUE(TakeValidBatch(&ok, limits).ok());
  evlog::v1::ProduceRequest big = Request(1, std::string(100, 'x'));
  auto batch = TakeValidBatch(&big, limits);
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(batch.status().message()), HasSubstr("--max-record-bytes"));
}

TEST(TakeValidBatchTest, RejectsOversizedBatch) {
  EdgeLimits limits;
  limits.max_batch_bytes = 1000;
  evlog::v1::ProduceRequest request = Request(20, std::string(100, 'x'));
  auto batch = TakeValidBatch(&request, limits);
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(batch.status().message()), HasSubstr("--max-batch-bytes"));
}

TEST(TakeValidBatchTest, RejectsTooManyRecords) {
  EdgeLimits limits;
  limits.max_batch_records = 3;
  evlog::v1::ProduceRequest request = Request(4);
  auto batch = TakeValidBatch(&request, limits);
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(batch.status().message()), HasSubstr("--max-batch-records"));
}

TEST(TakeValidBatchTest, RejectsNegativeTimestamp) {
  evlog::v1::ProduceRequest request = Request(1);
  request.mutable_records(0)->set_timestamp_ms(-5);
  EXPECT_EQ(TakeValidBatch(&request, EdgeLimits{}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(TakeValidBatchTest, KeyRoutingNeedsOneKey) {
  evlog::v1::ProduceRequest request = Request(2);
  request.set_partition(-1);
  EXPECT_TRUE(TakeValidBatch(&request, EdgeLimits{}).ok());
  evlog::v1::ProduceRequest mixed = Request(2);
  mixed.set_partition(-1);
  mixed.mutable_records(1)->set_key("other");
  auto batch = TakeValidBatch(&mixed, EdgeLimits{});
  EXPECT_EQ(batch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(batch.status().message()), HasSubstr("same key"));
}

TEST(ValidateReadRequestTest, NeedsExactlyOneStartPoint) {
  evlog::v1::ReadRequest request;
  request.set_topic("t");
  EXPECT_EQ(ValidateReadRequest(request).code(), absl::StatusCode::kInvalidArgument);
  request.set_offset(0);
  EXPECT_TRUE(ValidateReadRequest(request).ok());
  request.set_position(evlog::v1::START_POSITION_UNSPECIFIED);
  EXPECT_EQ(ValidateReadRequest(request).code(), absl::StatusCode::kInvalidArgument);
}

TEST(ValidateReadRequestTest, RejectsNegativeFields) {
  evlog::v1::ReadRequest base;
  base.set_topic("t");
  base.set_offset(5);
  auto check = [&](auto mutate) {
    evlog::v1::ReadRequest r = base;
    mutate(r);
    return ValidateReadRequest(r).code();
  };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(check([](auto& r) { r.set_partition(-1); }), kInvalid);
  EXPECT_EQ(check([](auto& r) { r.set_offset(-1); }), kInvalid);
  EXPECT_EQ(check([](auto& r) { r.set_timestamp_ms(-1); }), kInvalid);
  EXPECT_EQ(check([](auto& r) { r.set_end_offset(4); }), kInvalid);
  EXPECT_EQ(check([](auto& r) { r.set_max_records(-1); }), kInvalid);
  EXPECT_EQ(check([](auto& r) { r.set_max_bytes_per_response(-1); }), kInvalid);
  EXPECT_EQ(check([](auto& r) { r.set_heartbeat_ms(-1); }), kInvalid);
  EXPECT_EQ(check([](auto& r) { r.set_end_offset(5); }), absl::StatusCode::kOk);
}

}  // namespace
}  // namespace evlog::server
