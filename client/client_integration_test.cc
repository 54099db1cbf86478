// Integration tests of the client library (Producer, Reader, Admin) against real evlogd
// processes started through the test harness (127.0.0.1, free port, temporary data dir).
#include <signal.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/admin.h"
#include "client/producer.h"
#include "client/reader.h"
#include "evlog/v1/partitioner.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/server_process.h"

namespace evlog::client {
namespace {

using evlog::testing::ServerProcess;

// Reads a whole partition from `offset` up to its end as of the call.
std::vector<ConsumedRecord> ReadAll(Reader& reader, const std::string& topic, int32_t partition,
                                    int64_t offset = 0) {
  auto stream = reader.Open({.topic = topic, .partition = partition, .offset = offset});
  std::vector<ConsumedRecord> all, chunk;
  while (stream->Next(&chunk)) all.insert(all.end(), chunk.begin(), chunk.end());
  absl::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s;
  return all;
}

class ClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = server->release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    admin_ = Admin::Create(server_->address(), {.timeout = absl::Seconds(30)});
    reader_ = Reader::Create(server_->address());
  }
  void CreateTopic(const std::string& name, int32_t partitions) {
    auto t = admin_->CreateTopic(name, {.partitions = partitions});
    ASSERT_TRUE(t.ok()) << t.status();
  }

  static ServerProcess* server_;
  std::unique_ptr<Admin> admin_;
  std::unique_ptr<Reader> reader_;
};

ServerProcess* ClientTest::server_ = nullptr;

TEST_F(ClientTest, AdminDescribesTopicsAndTheServer) {
  CreateTopic("admin-t", 3);
  auto names = admin_->ListTopics();
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, ::testing::Contains("admin-t"));
  auto d = admin_->DescribeTopic("admin-t");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->partition_count, 3);
  ASSERT_EQ(d->partitions.size(), 3u);
  EXPECT_EQ(admin_->CreateTopic("admin-t", {}).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(admin_->DescribeTopic("nope").status().code(), absl::StatusCode::kNotFound);
  auto server = admin_->DescribeServer();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_GT(server->max_batch_bytes, 0);
  auto health = admin_->CheckHealth("");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, HealthState::kServing);
  EXPECT_TRUE(admin_->DeleteTopic("admin-t").ok());
  EXPECT_EQ(admin_->DeleteTopic("admin-t").code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, CallbacksGetDenseOffsetsInSendOrder) {
  CreateTopic("callbacks", 2);
  auto producer = Producer::Create(server_->address());
  absl::Mutex mu;
  std::vector<int64_t> offsets(1000, -1);
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(producer
                    ->Send("callbacks", {.value = absl::StrCat(i)}, 1,
                           [&, i](absl::StatusOr<RecordMetadata> m) {
                             ASSERT_TRUE(m.ok()) << m.status();
                             EXPECT_EQ(m->partition, 1);
                             absl::MutexLock lock(&mu);
                             offsets[i] = m->offset;
                           })
                    .ok());
  }
  ASSERT_TRUE(producer->Flush(absl::Now() + absl::Seconds(60)).ok());
  absl::MutexLock lock(&mu);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(offsets[i], i);
}

TEST_F(ClientTest, KeyedRecordsLandOnTheKeysPartitionInOrder) {
  constexpr int32_t kPartitions = 4;
  CreateTopic("keyed", kPartitions);
  // Small batches and a full window: many batches of each partition in flight at once.
  auto producer =
      Producer::Create(server_->address(), {.batch_max_records = 7, .max_in_flight = 8});
  const std::vector<std::string> keys = {"alpha", "beta", "gamma", "delta", "epsilon"};
  for (int i = 0; i < 400; ++i) {
    for (const std::string& key : keys) {
      ASSERT_TRUE(producer->Send("keyed", {.key = key, .value = absl::StrCat(i)}).ok());
    }
  }
  ASSERT_TRUE(producer->Flush(absl::Now() + absl::Seconds(60)).ok());
  std::map<std::string, int> next;  // key -> next value expected
  int total = 0;
  for (int32_t p = 0; p < kPartitions; ++p) {
    for (const ConsumedRecord& r : ReadAll(*reader_, "keyed", p)) {
      EXPECT_EQ(evlog::v1::PartitionForKey(r.key, kPartitions), p) << r.key;
      EXPECT_EQ(r.value, absl::StrCat(next[r.key]++)) << "key " << r.key << " out of order";
      ++total;
    }
  }
  EXPECT_EQ(total, 400 * 5);
  ProducerStats stats = producer->Stats();
  EXPECT_EQ(stats.records_acknowledged, 2000);
  EXPECT_GT(stats.batches_sent, 2000 / 7);
}

TEST_F(ClientTest, ErrorsAreTheServersCodes) {
  CreateTopic("errs", 1);
  auto producer = Producer::Create(server_->address());
  // Without a partition the topic's partition count is needed: NOT_FOUND at once.
  EXPECT_EQ(producer->Send("no-such-topic", {.value = "v"}).code(), absl::StatusCode::kNotFound);
  // With a partition the server says so per batch: Flush and the callback report it.
  absl::Status callback_status;
  absl::Mutex mu;
  ASSERT_TRUE(producer
                  ->Send("errs", {.value = "v"}, 3,
                         [&](absl::StatusOr<RecordMetadata> m) {
                           absl::MutexLock lock(&mu);
                           callback_status = m.status();
                         })
                  .ok());
  absl::Status flushed = producer->Flush(absl::Now() + absl::Seconds(30));
  EXPECT_EQ(flushed.code(), absl::StatusCode::kOutOfRange) << flushed;
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(callback_status.code(), absl::StatusCode::kOutOfRange);
  }
  EXPECT_EQ(producer->FirstError().code(), absl::StatusCode::kOutOfRange);
  // A record over the server's size limit is refused by Send itself.
  EXPECT_EQ(producer->Send("errs", {.value = std::string(2 << 20, 'x')}, 0).code(),
            absl::StatusCode::kInvalidArgument);
  // Reported once: the next Flush covers new records only.
  ASSERT_TRUE(producer->Send("errs", {.value = "ok"}, 0).ok());
  EXPECT_TRUE(producer->Flush(absl::Now() + absl::Seconds(30)).ok());
  EXPECT_TRUE(producer->Close(absl::Now() + absl::Seconds(30)).ok());
  EXPECT_EQ(producer->Send("errs", {.value = "late"}, 0).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(ClientTest, UnreachableServerIsUnavailable) {
  auto producer = Producer::Create("127.0.0.1:1", {.call_timeout = absl::Seconds(10)});
  EXPECT_EQ(producer->Send("t", {.value = "v"}, 0).code(), absl::StatusCode::kUnavailable);
  auto admin = Admin::Create("127.0.0.1:1", {.timeout = absl::Seconds(10)});
  EXPECT_EQ(admin->ListTopics().status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(ClientTest, ReaderReadsRangesAndReportsOutOfRange) {
  CreateTopic("ranges", 1);
  auto producer = Producer::Create(server_->address());
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(producer->Send("ranges", {.value = absl::StrCat(i)}, 0).ok());
  ASSERT_TRUE(producer->Flush(absl::Now() + absl::Seconds(30)).ok());

  auto stream = reader_->Open({.topic = "ranges", .partition = 0, .offset = 5, .end_offset = 8});
  std::vector<ConsumedRecord> chunk, all;
  while (stream->Next(&chunk)) all.insert(all.end(), chunk.begin(), chunk.end());
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].offset, 5);
  EXPECT_EQ(all[0].value, "5");
  EXPECT_EQ(all[2].offset, 7);
  EXPECT_EQ(stream->next_offset(), 8);
  EXPECT_EQ(stream->high_watermark(), 20);

  auto limited = reader_->Open(
      {.topic = "ranges", .partition = 0, .start = ReadSpec::kEarliest, .max_records = 4});
  all.clear();
  while (limited->Next(&chunk)) all.insert(all.end(), chunk.begin(), chunk.end());
  ASSERT_TRUE(limited->Finish().ok());
  EXPECT_EQ(all.size(), 4u);

  auto past = reader_->Open({.topic = "ranges", .partition = 0, .offset = 21});
  EXPECT_FALSE(past->Next(&chunk));
  EXPECT_EQ(past->Finish().code(), absl::StatusCode::kOutOfRange);
  auto missing = reader_->Open({.topic = "no-such", .partition = 0, .offset = 0});
  EXPECT_FALSE(missing->Next(&chunk));
  EXPECT_EQ(missing->Finish().code(), absl::StatusCode::kNotFound);
}

TEST_F(ClientTest, FollowDeliversLaterRecordsAndCancelEndsCleanly) {
  CreateTopic("tail", 1);
  auto stream = reader_->Open({.topic = "tail", .partition = 0, .offset = 0, .follow = true});
  auto producer = Producer::Create(server_->address());
  ASSERT_TRUE(producer->Send("tail", {.value = "later"}, 0).ok());
  ASSERT_TRUE(producer->Flush(absl::Now() + absl::Seconds(30)).ok());
  std::vector<ConsumedRecord> chunk;
  ASSERT_TRUE(stream->Next(&chunk));  // the idle timeout (30 s) bounds this wait
  ASSERT_EQ(chunk.size(), 1u);
  EXPECT_EQ(chunk[0].value, "later");
  stream->Cancel();
  EXPECT_FALSE(stream->Next(&chunk));
  EXPECT_TRUE(stream->Finish().ok());
}

// A server that stops answering (SIGSTOP: the kernel still accepts and buffers, like a
// blackholed path) must not hang the client: deadlines fire.
TEST(ClientDeadlineTest, StoppedServerHitsDeadlinesInsteadOfHanging) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  auto admin = Admin::Create(address, {.timeout = absl::Seconds(2)});
  ASSERT_TRUE(admin->CreateTopic("stall", {.partitions = 1}).ok());
  // The idempotent producer resends unanswered batches until their delivery timeout.
  auto producer = Producer::Create(
      address, {.ack_timeout = absl::Seconds(2), .delivery_timeout = absl::Seconds(5)});
  ASSERT_TRUE(producer->Send("stall", {.value = "before"}, 0).ok());
  ASSERT_TRUE(producer->Flush(absl::Now() + absl::Seconds(30)).ok());
  auto reader = Reader::Create(
      address, {.idle_timeout = absl::Seconds(2), .heartbeat = absl::Milliseconds(200)});
  auto follower = reader->Open({.topic = "stall", .partition = 0, .offset = 1, .follow = true});

  ASSERT_EQ(kill((*server)->pid(), SIGSTOP), 0);
  const absl::Time start = absl::Now();
  ASSERT_TRUE(producer->Send("stall", {.value = "during"}, 0).ok());
  absl::Status flushed = producer->Flush(absl::Now() + absl::Seconds(60));
  EXPECT_EQ(flushed.code(), absl::StatusCode::kDeadlineExceeded) << flushed;
  EXPECT_EQ(admin->ListTopics().status().code(), absl::StatusCode::kDeadlineExceeded);
  std::vector<ConsumedRecord> chunk;
  EXPECT_FALSE(follower->Next(&chunk));
  EXPECT_EQ(follower->Finish().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(30));
  kill((*server)->pid(), SIGCONT);
}

}  // namespace
}  // namespace evlog::client
