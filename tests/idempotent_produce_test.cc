// Idempotent producers over the wire: a batch resent after a lost acknowledgement is stored
// once, also across a server SIGKILL and restart; sequence gaps and bad requests are refused.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

class IdempotentProduceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stubs_ = std::make_unique<EvlogStubs>(server_->address());
    ASSERT_TRUE(CreateTopic(*stubs_, "t", 2).ok());
  }

  int64_t InitProducer() {
    evlog::v1::InitProducerRequest req;
    evlog::v1::InitProducerResponse resp;
    grpc::Status s = stubs_->producer->InitProducer(Deadline().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    EXPECT_GT(resp.producer_id(), 0);
    EXPECT_EQ(resp.producer_epoch(), 0);
    return resp.producer_id();
  }

  evlog::v1::ProduceRequest Batch(int64_t producer, int32_t seq, std::vector<std::string> values,
                                  int partition = 1) {
    evlog::v1::ProduceRequest req = MakeBatch("t", partition, values);
    req.set_producer_id(producer);
    req.set_producer_epoch(0);
    req.set_base_sequence(seq);
    return req;
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<EvlogStubs> stubs_;
};

TEST_F(IdempotentProduceTest, ResentBatchIsStoredOnceAcrossRestart) {
  const int64_t producer = InitProducer();
  EXPECT_NE(InitProducer(), producer);
  ProduceOutcome first = ProduceOne(*stubs_, Batch(producer, 0, {"a", "b"}));
  ASSERT_TRUE(first.status.ok()) << Describe(first.status);
  EXPECT_FALSE(first.response.duplicate());
  ProduceOutcome again = ProduceOne(*stubs_, Batch(producer, 0, {"a", "b"}));
  ASSERT_TRUE(again.status.ok()) << Describe(again.status);
  EXPECT_TRUE(again.response.duplicate());
  EXPECT_EQ(again.response.base_offset(), first.response.base_offset());

  server_->Kill();
  ASSERT_TRUE(server_->Restart().ok());
  stubs_ = std::make_unique<EvlogStubs>(server_->address());
  ProduceOutcome after = ProduceOne(*stubs_, Batch(producer, 0, {"a", "b"}));
  ASSERT_TRUE(after.status.ok()) << Describe(after.status);
  EXPECT_TRUE(after.response.duplicate());
  ProduceOutcome next = ProduceOne(*stubs_, Batch(producer, 2, {"c"}));
  ASSERT_TRUE(next.status.ok()) << Describe(next.status);
  EXPECT_FALSE(next.response.duplicate());
  EXPECT_EQ(next.response.base_offset(), 2);

  ReadOutcome read = ReadAll(*stubs_, ReadFrom("t", 1, 0));
  ASSERT_TRUE(read.status.ok()) << Describe(read.status);
  ASSERT_EQ(read.records.size(), 3u);
  EXPECT_EQ(read.records[2].value(), "c");
}

TEST_F(IdempotentProduceTest, GapsAndBadRequestsAreRefusedAndStoreNothing) {
  const int64_t producer = InitProducer();
  ASSERT_TRUE(ProduceOne(*stubs_, Batch(producer, 0, {"a"})).status.ok());
  ProduceOutcome gap = ProduceOne(*stubs_, Batch(producer, 5, {"x"}));
  EXPECT_EQ(gap.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(gap.status.error_message().find("sequence gap"), std::string::npos);
  evlog::v1::ProduceRequest no_partition = Batch(producer, 1, {"x"}, -1);
  EXPECT_EQ(ProduceOne(*stubs_, no_partition).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(ProduceOne(*stubs_, Batch(producer, -1, {"x"})).status.error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  // A producer's sequences are per partition: partition 0 starts afresh.
  ASSERT_TRUE(ProduceOne(*stubs_, Batch(producer, 0, {"p0"}, 0)).status.ok());
  EXPECT_EQ(EndOffsets(*stubs_, "t"), (std::vector<int64_t>{1, 1}));
}

// A newer epoch of the same producer id takes over (its sequence starts afresh); the older
// epoch is then fenced, also after a restart, and stores nothing.
TEST_F(IdempotentProduceTest, StaleEpochIsFencedAcrossRestart) {
  const int64_t producer = InitProducer();
  ASSERT_TRUE(ProduceOne(*stubs_, Batch(producer, 0, {"old"})).status.ok());
  evlog::v1::ProduceRequest newer = Batch(producer, 0, {"new"});
  newer.set_producer_epoch(1);
  ASSERT_TRUE(ProduceOne(*stubs_, newer).status.ok());
  ProduceOutcome stale = ProduceOne(*stubs_, Batch(producer, 1, {"stale"}));
  EXPECT_EQ(stale.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(stale.status.error_message().find("fenced"), std::string::npos)
      << stale.status.error_message();

  server_->Kill();
  ASSERT_TRUE(server_->Restart().ok());
  stubs_ = std::make_unique<EvlogStubs>(server_->address());
  stale = ProduceOne(*stubs_, Batch(producer, 1, {"stale"}));
  EXPECT_EQ(stale.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(EndOffsets(*stubs_, "t"), (std::vector<int64_t>{0, 2}));
}

}  // namespace
}  // namespace evlog::testing
