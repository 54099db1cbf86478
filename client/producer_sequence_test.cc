// Unit tests of the idempotent Producer's sequence handling against an in-process fake
// ProducerService whose answers the test controls: a batch refused for good makes the next
// batch of its partition a "sequence gap", which the producer must resolve by renumbering under
// a fresh producer id (and never by storing out of order or twice).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/producer.h"
#include "evlog/v1/evlog.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/batch_codec.h"

namespace evlog::client {
namespace {

namespace v1 = evlog::v1;
using ::testing::ElementsAre;

// Stores batches of partition 0 under the sequence rules of storage/producer_state.h (reduced:
// an unknown producer id may start anywhere; then base == last + 1, or an exact retry of the
// last batch). A record whose value is "poison" makes its batch fail with INVALID_ARGUMENT.
class FakeProducerService final : public v1::ProducerService::Service {
 public:
  grpc::Status Produce(
      grpc::ServerContext* /*context*/,
      grpc::ServerReaderWriter<v1::ProduceResponse, v1::ProduceRequest>* stream) override {
    v1::ProduceRequest request;
    while (stream->Read(&request)) {
      v1::ProduceResponse response = Handle(request);
      if (!stream->Write(response)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status InitProducer(grpc::ServerContext* /*context*/,
                            const v1::InitProducerRequest* /*request*/,
                            v1::InitProducerResponse* response) override {
    absl::MutexLock lock(&mu_);
    response->set_producer_id(++last_producer_id_);
    response->set_producer_epoch(0);
    return grpc::Status::OK;
  }

  std::vector<std::string> log() {
    absl::MutexLock lock(&mu_);
    return log_;
  }
  // "producer_id:base_sequence" of every stored batch, in order.
  std::vector<std::string> stored_as() {
    absl::MutexLock lock(&mu_);
    return stored_as_;
  }

 private:
  struct Last {
    int32_t first = 0;
    int32_t last = -1;
    int64_t base_offset = 0;
  };

  v1::ProduceResponse Handle(const v1::ProduceRequest& request) {
    absl::MutexLock lock(&mu_);
    v1::ProduceResponse response;
    response.set_request_id(request.request_id());
    response.set_partition(request.partition());
    auto fail = [&](grpc::StatusCode code, const std::string& message) {
      response.mutable_error()->set_code(code);
      response.mutable_error()->set_message(message);
      return response;
    };
    // The producer sends encoded batches (ProduceRequest.batch); other clients send records.
    std::vector<std::string> values;
    if (!request.batch().empty()) {
      absl::StatusOr<storage::BatchHeader> header = storage::VerifyBatch(request.batch());
      std::vector<storage::Record> records;
      if (!header.ok() ||
          !storage::DecodeRecords(request.batch(), 0, 0, header->record_count, &records).ok()) {
        return fail(grpc::INVALID_ARGUMENT, "bad batch");
      }
      if (header->producer.producer_id != request.producer_id() ||
          header->producer.base_sequence != request.base_sequence()) {
        return fail(grpc::INVALID_ARGUMENT, "batch header does not match the request");
      }
      for (storage::Record& r : records) values.push_back(std::move(r.value));
    } else {
      for (const v1::Record& r : request.records()) values.push_back(r.value());
    }
    const int32_t n = static_cast<int32_t>(values.size());
    for (const std::string& v : values) {
      if (v == "poison") return fail(grpc::INVALID_ARGUMENT, "poison record");
    }
    auto it = last_.find(request.producer_id());
    if (it != last_.end()) {
      const Last& last = it->second;
      if (request.base_sequence() == last.first && request.base_sequence() + n - 1 == last.last) {
        response.set_base_offset(last.base_offset);
        response.set_record_count(n);
        response.set_duplicate(true);
        return response;
      }
      if (request.base_sequence() != last.last + 1) {
        return fail(
            grpc::FAILED_PRECONDITION,
            absl::StrCat("sequence gap: producer ", request.producer_id(), " sent sequence ",
                         request.base_sequence(), " but the next expected is ", last.last + 1));
      }
    }
    const int64_t base_offset = static_cast<int64_t>(log_.size());
    for (std::string& v : values) log_.push_back(std::move(v));
    stored_as_.push_back(absl::StrCat(request.producer_id(), ":", request.base_sequence()));
    last_[request.producer_id()] = {request.base_sequence(), request.base_sequence() + n - 1,
                                    base_offset};
    response.set_base_offset(base_offset);
    response.set_record_count(n);
    return response;
  }

  absl::Mutex mu_;
  int64_t last_producer_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int64_t, Last> last_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> stored_as_ ABSL_GUARDED_BY(mu_);
};

class ProducerSequenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override { server_->Shutdown(absl::ToChronoTime(absl::Now())); }

  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

  FakeProducerService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(ProducerSequenceTest, BatchesCarryOneIdAndDenseSequences) {
  auto producer = Producer::Create(address());
  for (const char* v : {"a", "b", "c"}) {
    ASSERT_TRUE(producer->Send("t", {.value = v}, 0).ok());
    ASSERT_TRUE(producer->Flush(absl::Now() + absl::Seconds(30)).ok());
  }
  EXPECT_THAT(service_.log(), ElementsAre("a", "b", "c"));
  EXPECT_THAT(service_.stored_as(), ElementsAre("1:0", "1:1", "1:2"));
  EXPECT_EQ(producer->Stats().producer_ids, 1);
}

// The poison batch is refused for good; the server's sequence for producer 1 stops before it,
// so the next batch is a gap under producer 1 and must go on under a fresh id.
TEST_F(ProducerSequenceTest, BatchAfterAPermanentRefusalIsRenumberedUnderAFreshId) {
  auto producer = Producer::Create(address());
  ASSERT_TRUE(producer->Send("t", {.value = "a"}, 0).ok());
  ASSERT_TRUE(producer->Flush(absl::Now() + absl::Seconds(30)).ok());
  ASSERT_TRUE(producer->Send("t", {.value = "poison"}, 0).ok());
  EXPECT_EQ(producer->Flush(absl::Now() + absl::Seconds(30)).code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(producer->Send("t", {.value = "c"}, 0).ok());
  ASSERT_TRUE(producer->Send("t", {.value = "d"}, 0).ok());
  absl::Status flushed = producer->Flush(absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(flushed.ok()) << flushed;
  EXPECT_THAT(service_.log(), ElementsAre("a", "c", "d"));
  ASSERT_EQ(service_.stored_as().size(), 2u);
  EXPECT_EQ(service_.stored_as()[1], "2:0");  // renumbered from 0 under producer 2
  const ProducerStats stats = producer->Stats();
  EXPECT_EQ(stats.producer_ids, 2);
  EXPECT_EQ(stats.records_failed, 1);
  EXPECT_EQ(stats.records_acknowledged, 3);
}

}  // namespace
}  // namespace evlog::client
