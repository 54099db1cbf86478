// evlogd end to end through the raw gRPC stubs: topics, produce (stream and unary), read by
// offset, by time, by position, follow mode, response bounds, health and reflection.
#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/descriptor.pb.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "evlog/v1/partitioner.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using v1::ProduceRequest;
using v1::ProduceResponse;
using v1::ReadRequest;
using v1::ReadResponse;

class ServerApiTest : public SharedServerTest {};

TEST_F(ServerApiTest, TopicsCreateListDescribeDelete) {
  const std::string a = TopicName("-a"), b = TopicName("-b");
  ASSERT_TRUE(CreateTopic(*stubs_, b, 3).ok());
  v1::CreateTopicRequest create;
  create.set_name(a);
  create.set_retention_ms(3600000);
  v1::CreateTopicResponse created;
  ASSERT_TRUE(stubs_->admin->CreateTopic(Deadline().get(), create, &created).ok());
  EXPECT_EQ(created.topic().name(), a);
  EXPECT_EQ(created.topic().partition_count(), 1);  // 0 means 1
  EXPECT_EQ(created.topic().retention_ms(), 3600000);
  EXPECT_EQ(created.topic().retention_bytes(), -1);

  v1::ListTopicsResponse list;
  ASSERT_TRUE(stubs_->admin->ListTopics(Deadline().get(), {}, &list).ok());
  std::vector<std::string> names(list.names().begin(), list.names().end());
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_THAT(names, ::testing::IsSupersetOf({a, b}));

  v1::DescribeTopicRequest describe;
  describe.set_name(b);
  v1::DescribeTopicResponse described;
  ASSERT_TRUE(stubs_->admin->DescribeTopic(Deadline().get(), describe, &described).ok());
  EXPECT_EQ(described.topic().partition_count(), 3);
  ASSERT_EQ(described.topic().partitions_size(), 3);
  for (int p = 0; p < 3; ++p) {
    EXPECT_EQ(described.topic().partitions(p).partition(), p);
    EXPECT_EQ(described.topic().partitions(p).start_offset(), 0);
    EXPECT_EQ(described.topic().partitions(p).end_offset(), 0);
  }
  EXPECT_GT(described.topic().created_ms(), 0);

  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(b, 1, {"x", "y"})).status.ok());
  EXPECT_THAT(EndOffsets(*stubs_, b), ElementsAre(0, 2, 0));

  v1::DeleteTopicRequest del;
  del.set_name(b);
  v1::DeleteTopicResponse deleted;
  ASSERT_TRUE(stubs_->admin->DeleteTopic(Deadline().get(), del, &deleted).ok());
  EXPECT_EQ(stubs_->admin->DescribeTopic(Deadline().get(), describe, &described).error_code(),
            grpc::StatusCode::NOT_FOUND);
  list.Clear();
  ASSERT_TRUE(stubs_->admin->ListTopics(Deadline().get(), {}, &list).ok());
  EXPECT_THAT(std::vector<std::string>(list.names().begin(), list.names().end()),
              ::testing::Not(::testing::Contains(b)));
}

TEST_F(ServerApiTest, ProduceStreamPipelinesAndAnswersInRequestOrder) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic, 2).ok());
  constexpr int kRequests = 200;
  auto context = Deadline(absl::Seconds(30));
  auto stream = stubs_->producer->Produce(context.get());
  // All requests are written before any response is read: the server pipelines them, and
  // stops reading only while too many are unanswered (the gRPC buffers absorb the rest).
  std::thread writer([&] {
    for (int i = 0; i < kRequests; ++i) {
      ProduceRequest request =
          MakeBatch(topic, i % 2, {absl::StrCat("r", i, "a"), absl::StrCat("r", i, "b")});
      request.set_request_id(1000 + i);
      ASSERT_TRUE(stream->Write(request));
    }
    stream->WritesDone();
  });
  std::vector<int64_t> next_offset = {0, 0};
  ProduceResponse response;
  int answered = 0;
  while (stream->Read(&response)) {
    ASSERT_FALSE(response.has_error()) << response.error().message();
    EXPECT_EQ(response.request_id(), static_cast<uint64_t>(1000 + answered));
    EXPECT_EQ(response.partition(), answered % 2);
    EXPECT_EQ(response.base_offset(), next_offset[answered % 2]);
    EXPECT_EQ(response.record_count(), 2);
    EXPECT_GT(response.append_time_ms(), 0);
    next_offset[answered % 2] += 2;
    ++answered;
  }
  writer.join();
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(answered, kRequests);

  ReadOutcome read = ReadAll(*stubs_, ReadFrom(topic, 1, 0));
  ASSERT_TRUE(read.status.ok()) << Describe(read.status);
  ASSERT_EQ(read.records.size(), static_cast<size_t>(kRequests));
  for (size_t i = 0; i < read.records.size(); ++i) {
    EXPECT_EQ(read.records[i].offset(), static_cast<int64_t>(i));
    const int request = 2 * static_cast<int>(i / 2) + 1;
    EXPECT_EQ(read.records[i].value(), absl::StrCat("r", request, i % 2 ? "b" : "a"));
  }
}

TEST_F(ServerApiTest, RecordsRoundTripKeysHeadersAndTimestamps) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic).ok());
  ProduceRequest request;
  request.set_topic(topic);
  v1::Record* explicit_time = request.add_records();
  explicit_time->set_key(std::string("\0k\xff", 3));
  explicit_time->set_value(std::string("v\0", 2));
  explicit_time->set_timestamp_ms(1700000000123);
  for (const auto& [k, v] :
       {std::pair<std::string, std::string>{"h", "1"}, {"h", "2"}, {"a", ""}}) {
    v1::Header* header = explicit_time->add_headers();
    header->set_key(k);
    header->set_value(v);
  }
  request.add_records()->set_value("server time");
  const int64_t before = absl::ToUnixMillis(absl::Now());
  ProduceOutcome produced = ProduceOne(*stubs_, request);
  const int64_t after = absl::ToUnixMillis(absl::Now());
  ASSERT_TRUE(produced.status.ok()) << Describe(produced.status);
  EXPECT_EQ(produced.response.base_offset(), 0);
  EXPECT_EQ(produced.response.record_count(), 2);

  ReadOutcome read = ReadAll(*stubs_, ReadFrom(topic, 0, 0));
  ASSERT_TRUE(read.status.ok()) << Describe(read.status);
  ASSERT_EQ(read.records.size(), 2u);
  const v1::Record& first = read.records[0];
  EXPECT_EQ(first.key(), std::string("\0k\xff", 3));
  EXPECT_EQ(first.value(), std::string("v\0", 2));
  EXPECT_EQ(first.timestamp_ms(), 1700000000123);
  ASSERT_EQ(first.headers_size(), 3);
  EXPECT_EQ(first.headers(0).key(), "h");
  EXPECT_EQ(first.headers(0).value(), "1");
  EXPECT_EQ(first.headers(1).value(), "2");
  EXPECT_EQ(first.headers(2).key(), "a");
  const v1::Record& second = read.records[1];
  EXPECT_EQ(second.offset(), 1);
  EXPECT_GE(second.timestamp_ms(), before);
  EXPECT_LE(second.timestamp_ms(), after);
  EXPECT_EQ(second.timestamp_ms(), produced.response.append_time_ms());
}

TEST_F(ServerApiTest, PartitionMinusOneRoutesByDocumentedKeyHash) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic, 7).ok());
  for (const std::string key : {"foobar", "21", "abc", "", "user-42"}) {
    ProduceOutcome produced = ProduceOne(*stubs_, MakeBatch(topic, -1, {"v1", "v2"}, key));
    ASSERT_TRUE(produced.status.ok()) << Describe(produced.status);
    EXPECT_EQ(produced.response.partition(), evlog::v1::PartitionForKey(key, 7)) << key;
  }
  // murmur2("foobar") = -790332482 -> (& 0x7fffffff) = 1357151166 -> % 7 = 0, % 5 = 1.
  EXPECT_EQ(evlog::v1::PartitionForKey("foobar", 7), 0);
  EXPECT_EQ(evlog::v1::PartitionForKey("foobar", 5), 1);
}

TEST_F(ServerApiTest, ReadByTimestampAndOffsetForTimestamp) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic, 2).ok());
  for (int64_t t : {1000, 2000, 3000}) {
    ProduceRequest request = MakeBatch(topic, 1, {absl::StrCat("at", t)});
    request.mutable_records(0)->set_timestamp_ms(t);
    ASSERT_TRUE(ProduceOne(*stubs_, request).status.ok());
  }
  ReadRequest by_time = ReadFrom(topic, 1, 0);
  by_time.set_timestamp_ms(1500);
  ReadOutcome read = ReadAll(*stubs_, by_time);
  ASSERT_TRUE(read.status.ok()) << Describe(read.status);
  ASSERT_EQ(read.records.size(), 2u);
  EXPECT_EQ(read.records[0].offset(), 1);
  EXPECT_EQ(read.records[0].value(), "at2000");

  by_time.set_timestamp_ms(999999);  // after every record: starts at the end, reads nothing
  read = ReadAll(*stubs_, by_time);
  ASSERT_TRUE(read.status.ok());
  EXPECT_TRUE(read.records.empty());

  v1::OffsetForTimestampRequest lookup;
  lookup.set_topic(topic);
  lookup.set_timestamp_ms(2000);
  v1::OffsetForTimestampResponse offsets;
  ASSERT_TRUE(stubs_->admin->OffsetForTimestamp(Deadline().get(), lookup, &offsets).ok());
  ASSERT_EQ(offsets.offsets_size(), 2);  // every partition
  EXPECT_EQ(offsets.offsets(0).partition(), 0);
  EXPECT_EQ(offsets.offsets(0).offset(), 0);  // empty partition: its end
  EXPECT_EQ(offsets.offsets(1).partition(), 1);
  EXPECT_EQ(offsets.offsets(1).offset(), 1);
}

TEST_F(ServerApiTest, ReadPositionsEndOffsetAndMaxRecords) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic).ok());
  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 0, {"0", "1", "2", "3", "4"})).status.ok());
  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 0, {"5", "6", "7"})).status.ok());

  ReadRequest request = ReadFrom(topic, 0, 0);
  request.set_position(v1::START_POSITION_EARLIEST);
  EXPECT_EQ(ReadAll(*stubs_, request).records.size(), 8u);
  request.set_position(v1::START_POSITION_LATEST);
  ReadOutcome latest = ReadAll(*stubs_, request);
  EXPECT_TRUE(latest.status.ok());
  EXPECT_TRUE(latest.records.empty());

  request = ReadFrom(topic, 0, 3);  // mid-batch start
  request.set_end_offset(6);
  ReadOutcome ranged = ReadAll(*stubs_, request);
  ASSERT_TRUE(ranged.status.ok());
  std::vector<std::string> values;
  for (const auto& r : ranged.records) values.push_back(r.value());
  EXPECT_THAT(values, ElementsAre("3", "4", "5"));

  request = ReadFrom(topic, 0, 1);
  request.set_max_records(2);
  ReadOutcome limited = ReadAll(*stubs_, request);
  ASSERT_TRUE(limited.status.ok());
  ASSERT_EQ(limited.records.size(), 2u);
  EXPECT_EQ(limited.records[1].offset(), 2);

  // At the end offset exactly: an empty, successful read.
  ReadOutcome at_end = ReadAll(*stubs_, ReadFrom(topic, 0, 8));
  EXPECT_TRUE(at_end.status.ok());
  EXPECT_TRUE(at_end.records.empty());
}

TEST_F(ServerApiTest, LargeReadsComeInBoundedResponses) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic).ok());
  const std::string value(10000, 'v');
  for (int batch = 0; batch < 3; ++batch) {
    ASSERT_TRUE(
        ProduceOne(*stubs_, MakeBatch(topic, 0, std::vector<std::string>(100, value))).status.ok());
  }
  ReadRequest request = ReadFrom(topic, 0, 0);
  request.set_max_bytes_per_response(64 << 10);
  auto context = Deadline();
  auto reader = stubs_->reader->Read(context.get(), request);
  ReadResponse response;
  int64_t next = 0;
  int responses = 0;
  while (reader->Read(&response)) {
    ++responses;
    EXPECT_LE(response.ByteSizeLong(), 64u << 10);
    for (const auto& record : response.records()) EXPECT_EQ(record.offset(), next++);
    EXPECT_EQ(response.next_offset(), next);
    EXPECT_EQ(response.high_watermark(), 300);
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(next, 300);
  EXPECT_GE(responses, 300 * 10000 / (64 << 10));
}

TEST_F(ServerApiTest, FollowDeliversRecordsAppendedLater) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic, 2).ok());
  ReadRequest request = ReadFrom(topic, 1, 0);
  request.set_follow(true);
  auto context = Deadline(absl::Seconds(30));
  auto reader = stubs_->reader->Read(context.get(), request);

  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 1, {"first"})).status.ok());
  ReadResponse response;
  ASSERT_TRUE(reader->Read(&response));
  ASSERT_EQ(response.records_size(), 1);
  EXPECT_EQ(response.records(0).value(), "first");
  EXPECT_EQ(response.next_offset(), 1);

  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 0, {"other partition"})).status.ok());
  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 1, {"second", "third"})).status.ok());
  std::vector<std::string> values;
  while (values.size() < 2 && reader->Read(&response)) {
    for (const auto& r : response.records()) values.push_back(r.value());
  }
  EXPECT_THAT(values, ElementsAre("second", "third"));
  context->TryCancel();
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ServerApiTest, FollowEndsAtEndOffsetAndSendsHeartbeats) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic).ok());
  ReadRequest request = ReadFrom(topic, 0, 0);
  request.set_follow(true);
  request.set_end_offset(2);
  request.set_heartbeat_ms(100);
  auto context = Deadline(absl::Seconds(30));
  auto reader = stubs_->reader->Read(context.get(), request);
  ReadResponse response;
  ASSERT_TRUE(reader->Read(&response));  // a heartbeat on the idle partition
  EXPECT_EQ(response.records_size(), 0);
  EXPECT_EQ(response.next_offset(), 0);
  EXPECT_EQ(response.high_watermark(), 0);

  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 0, {"a", "b", "c"})).status.ok());
  std::vector<int64_t> offsets;
  while (reader->Read(&response)) {
    for (const auto& r : response.records()) offsets.push_back(r.offset());
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_THAT(offsets, ElementsAre(0, 1));  // end_offset is exclusive
}

TEST_F(ServerApiTest, DeletingATopicEndsItsFollowersWithNotFound) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic).ok());
  ReadRequest request = ReadFrom(topic, 0, 0);
  request.set_follow(true);
  request.set_heartbeat_ms(100);
  auto context = Deadline(absl::Seconds(30));
  auto reader = stubs_->reader->Read(context.get(), request);
  ReadResponse response;
  ASSERT_TRUE(reader->Read(&response));  // the follower runs
  v1::DeleteTopicRequest del;
  del.set_name(topic);
  v1::DeleteTopicResponse deleted;
  ASSERT_TRUE(stubs_->admin->DeleteTopic(Deadline().get(), del, &deleted).ok());
  while (reader->Read(&response)) {
    EXPECT_EQ(response.records_size(), 0);
  }
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << Describe(status);
}

TEST_F(ServerApiTest, DescribeServerReportsLimits) {
  v1::DescribeServerResponse info;
  ASSERT_TRUE(stubs_->admin->DescribeServer(Deadline().get(), {}, &info).ok());
  EXPECT_FALSE(info.version().empty());
  EXPECT_EQ(info.max_record_bytes(), 1 << 20);
  EXPECT_EQ(info.max_batch_bytes(), 2 << 20);
  EXPECT_EQ(info.max_response_bytes(), 4 << 20);
  EXPECT_EQ(info.fsync(), "always");
}

TEST_F(ServerApiTest, HealthCheckIsServing) {
  auto health = grpc::health::v1::Health::NewStub(stubs_->channel);
  for (const std::string service :
       {"", "evlog.v1.ProducerService", "evlog.v1.ReaderService", "evlog.v1.AdminService"}) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    ASSERT_TRUE(health->Check(Deadline().get(), request, &response).ok()) << service;
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

TEST_F(ServerApiTest, ReflectionListsServicesAndServesTheirDescriptors) {
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(stubs_->channel);
  auto context = Deadline();
  auto stream = reflection->ServerReflectionInfo(context.get());
  grpc::reflection::v1alpha::ServerReflectionRequest list;
  list.set_list_services("");
  ASSERT_TRUE(stream->Write(list));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::set<std::string> services;
  for (const auto& s : response.list_services_response().service()) services.insert(s.name());
  EXPECT_THAT(services,
              ::testing::IsSupersetOf({"evlog.v1.ProducerService", "evlog.v1.ReaderService",
                                       "evlog.v1.AdminService", "grpc.health.v1.Health"}));

  grpc::reflection::v1alpha::ServerReflectionRequest symbol;
  symbol.set_file_containing_symbol("evlog.v1.ProducerService");
  ASSERT_TRUE(stream->Write(symbol));
  ASSERT_TRUE(stream->Read(&response));
  ASSERT_GE(response.file_descriptor_response().file_descriptor_proto_size(), 1);
  google::protobuf::FileDescriptorProto file;
  ASSERT_TRUE(file.ParseFromString(response.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(file.name(), "evlog/v1/evlog.proto");
  EXPECT_EQ(file.package(), "evlog.v1");
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace evlog::testing
