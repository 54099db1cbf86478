// Produce requests that carry a pre-encoded batch (ProduceRequest.batch), against a real
// evlogd: the bytes are stored unchanged (checked on disk with ReadRaw after a clean stop),
// timestamps are the client's (0 kept), idempotent retries are answered as duplicates, and
// malformed or mixed requests are refused with INVALID_ARGUMENT while storing nothing.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/batch_builder.h"
#include "storage/log_store.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

using ::testing::HasSubstr;

std::string EncodedBatch(const std::vector<std::string>& values, int64_t first_ts,
                         const storage::ProducerInfo& producer = {}) {
  std::string bytes;
  storage::BatchBuilder b(&bytes);
  for (const std::string& v : values) b.Add(first_ts++, "key", v);
  b.Finish(producer, 0);
  return bytes;
}

v1::ProduceRequest RawRequest(const std::string& topic, int32_t partition, std::string batch) {
  v1::ProduceRequest r;
  r.set_topic(topic);
  r.set_partition(partition);
  r.set_batch(std::move(batch));
  return r;
}

class RawProduceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stubs_ = std::make_unique<EvlogStubs>(server_->address());
    ASSERT_TRUE(CreateTopic(*stubs_, "t", 2).ok());
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<EvlogStubs> stubs_;
};

TEST_F(RawProduceTest, BatchIsStoredByteForByteAndKeepsTheClientsTimestamps) {
  // A records request first, then batches on a stream: offsets continue across both paths.
  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch("t", 1, {"r0"})).status.ok());
  const std::string first = EncodedBatch({"a", "b", "c"}, /*first_ts=*/0);
  const std::string second = EncodedBatch({"d"}, 1'700'000'000'000);
  {
    auto context = Deadline();
    auto stream = stubs_->producer->Produce(context.get());
    v1::ProduceRequest r1 = RawRequest("t", 1, first);
    r1.set_request_id(1);
    v1::ProduceRequest r2 = RawRequest("t", 1, second);
    r2.set_request_id(2);
    ASSERT_TRUE(stream->Write(r1));
    ASSERT_TRUE(stream->Write(r2));
    stream->WritesDone();
    v1::ProduceResponse response;
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_FALSE(response.has_error()) << response.error().message();
    EXPECT_EQ(response.request_id(), 1u);
    EXPECT_EQ(response.partition(), 1);
    EXPECT_EQ(response.base_offset(), 1);
    EXPECT_EQ(response.record_count(), 3);
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_FALSE(response.has_error()) << response.error().message();
    EXPECT_EQ(response.base_offset(), 4);
    EXPECT_EQ(response.record_count(), 1);
    grpc::Status finished = stream->Finish();
    ASSERT_TRUE(finished.ok()) << Describe(finished);
  }

  ReadOutcome read = ReadAll(*stubs_, ReadFrom("t", 1, 0));
  ASSERT_TRUE(read.status.ok()) << Describe(read.status);
  ASSERT_EQ(read.records.size(), 5u);
  EXPECT_EQ(read.records[0].value(), "r0");
  EXPECT_EQ(read.records[1].value(), "a");
  EXPECT_EQ(read.records[1].key(), "key");
  EXPECT_EQ(read.records[1].timestamp_ms(), 0);  // not replaced by the server's clock
  EXPECT_EQ(read.records[3].timestamp_ms(), 2);
  EXPECT_EQ(read.records[4].timestamp_ms(), 1'700'000'000'000);

  // On disk, after a clean stop: exactly the bytes that were sent.
  absl::StatusOr<int> exit = server_->Terminate();
  ASSERT_TRUE(exit.ok()) << exit.status();
  ASSERT_EQ(*exit, 0);
  storage::Options options;
  options.retention_check_interval = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<storage::LogStore>> store =
      storage::LogStore::Open(server_->data_dir(), options);
  ASSERT_TRUE(store.ok()) << store.status();
  absl::StatusOr<std::vector<storage::RawBatch>> raw = (*store)->ReadRaw("t", 1, 1, 1 << 20);
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_EQ(raw->size(), 2u);
  EXPECT_EQ((*raw)[0].base_offset, 1);
  EXPECT_EQ((*raw)[0].bytes, first);
  EXPECT_EQ((*raw)[1].base_offset, 4);
  EXPECT_EQ((*raw)[1].bytes, second);
}

TEST_F(RawProduceTest, IdempotentRetryOfABatchIsAnsweredAsADuplicate) {
  v1::InitProducerResponse init;
  ASSERT_TRUE(stubs_->producer->InitProducer(Deadline().get(), {}, &init).ok());
  const storage::ProducerInfo producer{
      .producer_id = init.producer_id(),
      .producer_epoch = static_cast<int16_t>(init.producer_epoch()),
      .base_sequence = 0};
  v1::ProduceRequest request = RawRequest("t", 0, EncodedBatch({"x", "y"}, 5, producer));
  request.set_producer_id(producer.producer_id);
  request.set_producer_epoch(producer.producer_epoch);
  request.set_base_sequence(0);
  ProduceOutcome first = ProduceOne(*stubs_, request);
  ASSERT_TRUE(first.status.ok()) << Describe(first.status);
  EXPECT_FALSE(first.response.duplicate());
  ProduceOutcome again = ProduceOne(*stubs_, request);
  ASSERT_TRUE(again.status.ok()) << Describe(again.status);
  EXPECT_TRUE(again.response.duplicate());
  EXPECT_EQ(again.response.base_offset(), first.response.base_offset());
  EXPECT_EQ(again.response.record_count(), 2);

  // A gap in the batch path is refused as in the records path.
  storage::ProducerInfo gap = producer;
  gap.base_sequence = 9;
  v1::ProduceRequest later = RawRequest("t", 0, EncodedBatch({"z"}, 5, gap));
  later.set_producer_id(gap.producer_id);
  later.set_producer_epoch(gap.producer_epoch);
  later.set_base_sequence(9);
  ProduceOutcome refused = ProduceOne(*stubs_, later);
  EXPECT_EQ(refused.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("sequence gap"));
  EXPECT_EQ(EndOffsets(*stubs_, "t"), (std::vector<int64_t>{2, 0}));
}

TEST_F(RawProduceTest, MixedMalformedAndMismatchedRequestsAreRefusedAndStoreNothing) {
  v1::ProduceRequest mixed = RawRequest("t", 0, EncodedBatch({"a"}, 1));
  mixed.add_records()->set_value("b");
  ProduceOutcome r = ProduceOne(*stubs_, mixed);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("both records and batch"));

  std::string flipped = EncodedBatch({"a", "b"}, 1);
  flipped[flipped.size() - 1] ^= 0x04;
  r = ProduceOne(*stubs_, RawRequest("t", 0, flipped));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("CRC32C"));

  r = ProduceOne(*stubs_, RawRequest("t", -1, EncodedBatch({"a"}, 1)));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // Idempotent header in a plain request.
  r = ProduceOne(*stubs_, RawRequest("t", 0, EncodedBatch({"a"}, 1, {7, 0, 0})));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(r.status.error_message(), HasSubstr("must be equal"));

  r = ProduceOne(*stubs_, RawRequest("t", 5, EncodedBatch({"a"}, 1)));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  r = ProduceOne(*stubs_, RawRequest("no-such-topic", 0, EncodedBatch({"a"}, 1)));
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND);

  EXPECT_EQ(EndOffsets(*stubs_, "t"), (std::vector<int64_t>{0, 0}));
}

}  // namespace
}  // namespace evlog::testing
