// Every request evlogd must refuse, with its exact status code, and proof that refused requests
// change no stored data. The server runs with small limits so the cases are cheap to build.
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

using ::testing::HasSubstr;
using v1::ProduceRequest;
using v1::ReadRequest;

constexpr int kMaxRecordBytes = 1024;
constexpr int kMaxBatchBytes = 8192;
constexpr int kMaxBatchRecords = 10;
constexpr char kTopic[] = "valid";  // 2 partitions, 3 records in partition 0

class ServerValidationTest : public SharedServerTest {
 protected:
  static void SetUpTestSuite() {
    ServerProcessOptions options;
    options.extra_flags = {"--max-record-bytes=" + std::to_string(kMaxRecordBytes),
                           "--max-batch-bytes=" + std::to_string(kMaxBatchBytes),
                           "--max-batch-records=" + std::to_string(kMaxBatchRecords),
                           "--max-read-streams=2", "--max-produce-streams=1"};
    StartServer(options);
    ASSERT_NE(server_, nullptr);
    EvlogStubs stubs(server_->address());
    ASSERT_TRUE(CreateTopic(stubs, kTopic, 2).ok());
    ASSERT_TRUE(ProduceOne(stubs, MakeBatch(kTopic, 0, {"a", "b", "c"})).status.ok());
  }
};

struct ProduceCase {
  std::string name;
  ProduceRequest request;
  grpc::StatusCode code;
  std::string message_part;
};

std::vector<ProduceCase> BadProduceRequests() {
  std::vector<ProduceCase> cases;
  cases.push_back({"bad topic name", MakeBatch("no spaces", 0, {"v"}),
                   grpc::StatusCode::INVALID_ARGUMENT, "[A-Za-z0-9._-]"});
  cases.push_back(
      {"empty topic name", MakeBatch("", 0, {"v"}), grpc::StatusCode::INVALID_ARGUMENT, "empty"});
  cases.push_back(
      {"unknown topic", MakeBatch("missing", 0, {"v"}), grpc::StatusCode::NOT_FOUND, "missing"});
  cases.push_back({"unknown topic by key", MakeBatch("missing", -1, {"v"}, "k"),
                   grpc::StatusCode::NOT_FOUND, "missing"});
  cases.push_back({"partition beyond count", MakeBatch(kTopic, 2, {"v"}),
                   grpc::StatusCode::OUT_OF_RANGE, "partition"});
  cases.push_back({"partition below -1", MakeBatch(kTopic, -2, {"v"}),
                   grpc::StatusCode::INVALID_ARGUMENT, "-1"});
  cases.push_back(
      {"empty batch", MakeBatch(kTopic, 0, {}), grpc::StatusCode::INVALID_ARGUMENT, "empty batch"});
  cases.push_back({"record over limit",
                   MakeBatch(kTopic, 0, {std::string(kMaxRecordBytes + 1, 'x')}),
                   grpc::StatusCode::INVALID_ARGUMENT, "--max-record-bytes"});
  ProduceRequest big_header = MakeBatch(kTopic, 0, {"v"});
  v1::Header* header = big_header.mutable_records(0)->add_headers();
  header->set_key("h");
  header->set_value(std::string(kMaxRecordBytes, 'h'));
  cases.push_back({"record over limit by headers", big_header, grpc::StatusCode::INVALID_ARGUMENT,
                   "--max-record-bytes"});
  cases.push_back({"batch over byte limit",
                   MakeBatch(kTopic, 0, std::vector<std::string>(9, std::string(1000, 'x'))),
                   grpc::StatusCode::INVALID_ARGUMENT, "--max-batch-bytes"});
  cases.push_back({"batch over record limit",
                   MakeBatch(kTopic, 0, std::vector<std::string>(kMaxBatchRecords + 1, "v")),
                   grpc::StatusCode::INVALID_ARGUMENT, "--max-batch-records"});
  ProduceRequest negative_time = MakeBatch(kTopic, 0, {"v"});
  negative_time.mutable_records(0)->set_timestamp_ms(-1);
  cases.push_back(
      {"negative timestamp", negative_time, grpc::StatusCode::INVALID_ARGUMENT, "timestamp_ms"});
  ProduceRequest mixed_keys = MakeBatch(kTopic, -1, {"v", "w"}, "k1");
  mixed_keys.mutable_records(1)->set_key("k2");
  cases.push_back(
      {"mixed keys with partition -1", mixed_keys, grpc::StatusCode::INVALID_ARGUMENT, "same key"});
  return cases;
}

TEST_F(ServerValidationTest, ProduceOneRefusesBadRequestsWithExactCodes) {
  for (const ProduceCase& c : BadProduceRequests()) {
    ProduceOutcome outcome = ProduceOne(*stubs_, c.request);
    EXPECT_EQ(outcome.status.error_code(), c.code) << c.name << ": " << Describe(outcome.status);
    EXPECT_THAT(outcome.status.error_message(), HasSubstr(c.message_part)) << c.name;
  }
  EXPECT_THAT(EndOffsets(*stubs_, kTopic), ::testing::ElementsAre(3, 0));
}

TEST_F(ServerValidationTest, ProduceStreamAnswersBadRequestsAndGoesOn) {
  auto context = Deadline();
  auto stream = stubs_->producer->Produce(context.get());
  const std::vector<ProduceCase> cases = BadProduceRequests();
  for (size_t i = 0; i < cases.size(); ++i) {
    ProduceRequest request = cases[i].request;
    request.set_request_id(i);
    ASSERT_TRUE(stream->Write(request));
  }
  ProduceRequest good = MakeBatch(kTopic, 1, {"good"});
  good.set_request_id(cases.size());
  ASSERT_TRUE(stream->Write(good));
  stream->WritesDone();
  v1::ProduceResponse response;
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.request_id(), i);
    ASSERT_TRUE(response.has_error()) << cases[i].name;
    EXPECT_EQ(response.error().code(), static_cast<int>(cases[i].code)) << cases[i].name;
    EXPECT_THAT(response.error().message(), HasSubstr(cases[i].message_part)) << cases[i].name;
  }
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_FALSE(response.has_error()) << response.error().message();
  EXPECT_EQ(response.partition(), 1);
  EXPECT_EQ(response.base_offset(), 0);
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
  // Only the good request was stored.
  ReadOutcome read = ReadAll(*stubs_, ReadFrom(kTopic, 1, 0));
  ASSERT_EQ(read.records.size(), 1u);
  EXPECT_EQ(read.records[0].value(), "good");
  EXPECT_EQ(EndOffsets(*stubs_, kTopic)[0], 3);
}

TEST_F(ServerValidationTest, ReadRefusesBadRequestsWithExactCodes) {
  struct Case {
    std::string name;
    ReadRequest request;
    grpc::StatusCode code;
    std::string message_part;
  };
  std::vector<Case> cases;
  ReadRequest no_start;
  no_start.set_topic(kTopic);
  cases.push_back({"no start point", no_start, grpc::StatusCode::INVALID_ARGUMENT, "start"});
  cases.push_back({"bad topic name", ReadFrom("a/b", 0, 0), grpc::StatusCode::INVALID_ARGUMENT,
                   "[A-Za-z0-9._-]"});
  cases.push_back(
      {"unknown topic", ReadFrom("missing", 0, 0), grpc::StatusCode::NOT_FOUND, "missing"});
  cases.push_back({"negative partition", ReadFrom(kTopic, -1, 0),
                   grpc::StatusCode::INVALID_ARGUMENT, "partition"});
  cases.push_back({"partition beyond count", ReadFrom(kTopic, 2, 0), grpc::StatusCode::OUT_OF_RANGE,
                   "partition"});
  ReadRequest earliest_beyond = ReadFrom(kTopic, 5, 0);
  earliest_beyond.set_position(v1::START_POSITION_EARLIEST);
  cases.push_back({"partition beyond count (earliest)", earliest_beyond,
                   grpc::StatusCode::OUT_OF_RANGE, "partition"});
  cases.push_back(
      {"negative offset", ReadFrom(kTopic, 0, -1), grpc::StatusCode::INVALID_ARGUMENT, "offset"});
  cases.push_back(
      {"offset past the end", ReadFrom(kTopic, 0, 4), grpc::StatusCode::OUT_OF_RANGE, "3"});
  ReadRequest follow_past_end = ReadFrom(kTopic, 0, 100);
  follow_past_end.set_follow(true);
  cases.push_back(
      {"follow from past the end", follow_past_end, grpc::StatusCode::OUT_OF_RANGE, "3"});
  ReadRequest end_before_start = ReadFrom(kTopic, 0, 2);
  end_before_start.set_end_offset(1);
  cases.push_back({"end_offset below start", end_before_start, grpc::StatusCode::INVALID_ARGUMENT,
                   "end_offset"});
  ReadRequest negative_max = ReadFrom(kTopic, 0, 0);
  negative_max.set_max_records(-1);
  cases.push_back(
      {"negative max_records", negative_max, grpc::StatusCode::INVALID_ARGUMENT, "max_records"});
  ReadRequest bad_position = ReadFrom(kTopic, 0, 0);
  bad_position.set_position(v1::START_POSITION_UNSPECIFIED);
  cases.push_back(
      {"unspecified position", bad_position, grpc::StatusCode::INVALID_ARGUMENT, "position"});
  for (const Case& c : cases) {
    ReadOutcome outcome = ReadAll(*stubs_, c.request);
    EXPECT_EQ(outcome.status.error_code(), c.code) << c.name << ": " << Describe(outcome.status);
    EXPECT_THAT(outcome.status.error_message(), HasSubstr(c.message_part)) << c.name;
    EXPECT_TRUE(outcome.records.empty()) << c.name;
  }
}

TEST_F(ServerValidationTest, AdminRefusesBadRequestsWithExactCodes) {
  auto create = [&](const std::string& name, int partitions, int64_t retention_ms = 0) {
    v1::CreateTopicRequest request;
    request.set_name(name);
    request.set_partitions(partitions);
    request.set_retention_ms(retention_ms);
    v1::CreateTopicResponse response;
    return stubs_->admin->CreateTopic(Deadline().get(), request, &response);
  };
  EXPECT_EQ(create("bad name", 1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(create(std::string(250, 'x'), 1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(create("too-many", 4097).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(create("negative", -1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(create("bad-retention", 1, -5).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  grpc::Status exists = create(kTopic, 1);
  EXPECT_EQ(exists.error_code(), grpc::StatusCode::ALREADY_EXISTS) << Describe(exists);

  v1::DeleteTopicRequest del;
  del.set_name("missing");
  v1::DeleteTopicResponse deleted;
  EXPECT_EQ(stubs_->admin->DeleteTopic(Deadline().get(), del, &deleted).error_code(),
            grpc::StatusCode::NOT_FOUND);
  del.set_name("");
  EXPECT_EQ(stubs_->admin->DeleteTopic(Deadline().get(), del, &deleted).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);

  v1::DescribeTopicRequest describe;
  describe.set_name("missing");
  v1::DescribeTopicResponse described;
  EXPECT_EQ(stubs_->admin->DescribeTopic(Deadline().get(), describe, &described).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::OffsetForTimestampRequest lookup;
  lookup.set_topic(kTopic);
  lookup.set_timestamp_ms(-1);
  v1::OffsetForTimestampResponse offsets;
  EXPECT_EQ(stubs_->admin->OffsetForTimestamp(Deadline().get(), lookup, &offsets).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  lookup.set_timestamp_ms(0);
  lookup.add_partitions(7);
  EXPECT_EQ(stubs_->admin->OffsetForTimestamp(Deadline().get(), lookup, &offsets).error_code(),
            grpc::StatusCode::OUT_OF_RANGE);

  v1::ListTopicsResponse list;
  ASSERT_TRUE(stubs_->admin->ListTopics(Deadline().get(), {}, &list).ok());
  EXPECT_THAT(std::vector<std::string>(list.names().begin(), list.names().end()),
              ::testing::ElementsAre(kTopic));
}

TEST_F(ServerValidationTest, ReadStreamsBeyondTheCapAreRefusedWithRetryHint) {
  // Two following readers take both slots (--max-read-streams=2); a heartbeat proves each runs.
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::ReadResponse>>> readers;
  for (int i = 0; i < 2; ++i) {
    ReadRequest follow = ReadFrom(kTopic, 0, 3);
    follow.set_follow(true);
    follow.set_heartbeat_ms(100);
    contexts.push_back(Deadline(absl::Seconds(30)));
    readers.push_back(stubs_->reader->Read(contexts.back().get(), follow));
    v1::ReadResponse heartbeat;
    ASSERT_TRUE(readers.back()->Read(&heartbeat));
  }
  auto context = Deadline();
  auto refused = stubs_->reader->Read(context.get(), ReadFrom(kTopic, 0, 0));
  v1::ReadResponse response;
  EXPECT_FALSE(refused->Read(&response));
  grpc::Status status = refused->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Describe(status);
  EXPECT_THAT(status.error_message(), HasSubstr("--max-read-streams"));
  const auto& trailers = context->GetServerTrailingMetadata();
  auto hint = trailers.find("retry-after-ms");
  ASSERT_NE(hint, trailers.end());
  EXPECT_EQ(std::string(hint->second.data(), hint->second.size()), "100");

  for (size_t i = 0; i < readers.size(); ++i) {
    contexts[i]->TryCancel();
    readers[i]->Finish();
  }
  // Slots are given back: a read succeeds again soon.
  EXPECT_TRUE(WaitFor([&] { return ReadAll(*stubs_, ReadFrom(kTopic, 0, 0)).status.ok(); },
                      absl::Seconds(10)));
}

TEST_F(ServerValidationTest, ProduceStreamsBeyondTheCapAreRefusedWithRetryHint) {
  auto first_context = Deadline();
  auto first = stubs_->producer->Produce(first_context.get());
  ProduceRequest request = MakeBatch(kTopic, 1, {"capped"});
  ASSERT_TRUE(first->Write(request));
  v1::ProduceResponse response;
  ASSERT_TRUE(first->Read(&response));  // the first stream holds the only slot
  EXPECT_FALSE(response.has_error());

  auto context = Deadline();
  auto refused = stubs_->producer->Produce(context.get());
  refused->Write(request);
  EXPECT_FALSE(refused->Read(&response));
  grpc::Status status = refused->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << Describe(status);
  EXPECT_THAT(status.error_message(), HasSubstr("--max-produce-streams"));
  EXPECT_EQ(context->GetServerTrailingMetadata().count("retry-after-ms"), 1u);

  first->WritesDone();
  EXPECT_FALSE(first->Read(&response));
  EXPECT_TRUE(first->Finish().ok());
}

}  // namespace
}  // namespace evlog::testing
