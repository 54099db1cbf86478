// Tests of the client spool (client/spool.h): order, ids and sequences across reopen, the
// size bound in both modes, the directory lock, the value format and its checksum, dead
// letters, and a writer SIGKILLed mid-append (crash and resume).
#include "client/spool.h"

#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "client/spool_format.h"
#include "client/testing/child_process.h"
#include "evlog/v1/evlog.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/server_process.h"

namespace evlog::client {
namespace {

using ::evlog::testing::TempDir;

NewSpoolBatch MakeBatch(const std::string& topic, int32_t partition, int records,
                        const std::string& prefix = "v") {
  evlog::v1::ProduceRequest request;
  for (int i = 0; i < records; ++i) request.add_records()->set_value(prefix + std::to_string(i));
  return {topic, partition, records, request.SerializeAsString()};
}

std::vector<std::string> Values(const SpoolBatch& b) {
  evlog::v1::ProduceRequest request;
  EXPECT_TRUE(request.ParseFromString(b.records));
  std::vector<std::string> out;
  for (const auto& r : request.records()) out.push_back(r.value());
  return out;
}

TEST(SpoolFormatTest, WorkedExampleMatchesTheDocumentedBytes) {
  spool_format::BatchFields b;
  b.topic = "t";
  b.partition = 2;
  b.base_sequence = 7;
  b.record_count = 1;
  b.spooled_ms = 1700000000000;
  b.records = std::string("\x22\x03\x22\x01\x76", 5);
  const std::string v = spool_format::EncodeBatch(b);
  ASSERT_EQ(v.size(), 34u);
  EXPECT_EQ(v.substr(0, 4), std::string("\x01\x00\x01\x00", 4));
  EXPECT_EQ(v.substr(8), std::string("\x01\x00\x00\x00\x02\x00\x00\x00\x07\x00\x00\x00"
                                     "\x00\x68\xe5\xcf\x8b\x01\x00\x00"
                                     "t\x22\x03\x22\x01\x76",
                                     26));
  auto decoded = spool_format::DecodeBatch(v);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->topic, "t");
  EXPECT_EQ(decoded->partition, 2);
  EXPECT_EQ(decoded->base_sequence, 7);
  EXPECT_EQ(decoded->spooled_ms, 1700000000000);
  EXPECT_EQ(decoded->records, b.records);
}

TEST(SpoolFormatTest, DamageIsDataLoss) {
  spool_format::BatchFields b{"topic", 0, 0, 1, 1, std::string("\x22\x00", 2)};
  const std::string v = spool_format::EncodeBatch(b);
  for (size_t i : {size_t{0}, size_t{5}, size_t{12}, v.size() - 1}) {
    std::string bad = v;
    bad[i] ^= 0x40;
    EXPECT_EQ(spool_format::DecodeBatch(bad).status().code(), absl::StatusCode::kDataLoss) << i;
  }
  EXPECT_EQ(spool_format::DecodeBatch(v.substr(0, 20)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_EQ(spool_format::DecodeBatch(v.substr(0, v.size() - 1)).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(SpoolTest, AppendReadAckKeepOrderIdsAndSequencesAcrossReopen) {
  TempDir dir("spool-test");
  {
    auto spool = Spool::Open(dir.path());
    ASSERT_TRUE(spool.ok()) << spool.status();
    auto a = (*spool)->Append(MakeBatch("t", 0, 3, "a"), absl::InfiniteFuture());
    auto b = (*spool)->Append(MakeBatch("t", 1, 2, "b"), absl::InfiniteFuture());
    auto c = (*spool)->Append(MakeBatch("t", 0, 4, "c"), absl::InfiniteFuture());
    ASSERT_TRUE(a.ok() && b.ok() && c.ok());
    EXPECT_EQ(a->id, 1u);
    EXPECT_EQ(b->id, 2u);
    EXPECT_EQ(c->id, 3u);
    EXPECT_EQ(a->base_sequence, 0);
    EXPECT_EQ(b->base_sequence, 0);  // sequences are per partition
    EXPECT_EQ(c->base_sequence, 3);

    auto read = (*spool)->Read(0, 100, 1 << 20);
    ASSERT_TRUE(read.ok());
    ASSERT_EQ(read->size(), 3u);
    EXPECT_EQ((*read)[0].id, 1u);
    EXPECT_EQ(Values((*read)[0]), (std::vector<std::string>{"a0", "a1", "a2"}));
    EXPECT_EQ((*read)[2].base_sequence, 3);
    EXPECT_EQ((*read)[2].record_count, 4);
    EXPECT_EQ((*spool)->Counters().pending_records, 9);

    ASSERT_TRUE((*spool)->Ack({{1, 3, (*read)[0].bytes}}).ok());
    EXPECT_EQ((*spool)->Counters().pending_batches, 2);
    ASSERT_TRUE((*spool)->SetProducer({42, 0}).ok());
  }
  auto spool = Spool::Open(dir.path());
  ASSERT_TRUE(spool.ok()) << spool.status();
  EXPECT_EQ((*spool)->Producer().producer_id, 42);
  EXPECT_EQ((*spool)->Counters().pending_batches, 2);
  EXPECT_EQ((*spool)->Counters().pending_records, 6);
  auto read = (*spool)->Read(0, 100, 1 << 20);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].id, 2u);
  EXPECT_EQ((*read)[1].id, 3u);
  auto d = (*spool)->Append(MakeBatch("t", 0, 1), absl::InfiniteFuture());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->id, 4u);
  EXPECT_EQ(d->base_sequence, 7);

  // Ids never go back, even once everything is acknowledged.
  std::vector<SpoolBatchRef> all;
  auto rest = (*spool)->Read(0, 100, 1 << 20);
  ASSERT_TRUE(rest.ok());
  for (const auto& b : *rest) all.push_back({b.id, b.record_count, b.bytes});
  ASSERT_TRUE((*spool)->Ack(all).ok());
  spool->reset();
  spool = Spool::Open(dir.path());
  ASSERT_TRUE(spool.ok());
  EXPECT_EQ((*spool)->Counters().bytes, 0);
  auto e = (*spool)->Append(MakeBatch("t", 0, 1), absl::InfiniteFuture());
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->id, 5u);
  EXPECT_EQ(e->base_sequence, 8);
}

TEST(SpoolTest, ConcurrentAppendsGetDenseSequences) {
  TempDir dir("spool-test");
  auto spool = Spool::Open(dir.path());
  ASSERT_TRUE(spool.ok());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        ASSERT_TRUE((*spool)->Append(MakeBatch("t", 0, 3), absl::InfiniteFuture()).ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  auto read = (*spool)->Read(0, 1000, 1 << 30);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 200u);
  for (size_t i = 0; i < read->size(); ++i) {
    EXPECT_EQ((*read)[i].id, i + 1);
    EXPECT_EQ((*read)[i].base_sequence, static_cast<int32_t>(3 * i));  // id order = sequence order
  }
}

TEST(SpoolTest, FullWithFailPolicyRefusesAtOnceAndAcceptsAfterAck) {
  TempDir dir("spool-test");
  const int64_t one = spool_format::BatchValueSize(1, MakeBatch("t", 0, 10).records.size());
  auto spool = Spool::Open(dir.path(), {.max_bytes = 3 * one, .when_full = SpoolFullPolicy::kFail});
  ASSERT_TRUE(spool.ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE((*spool)->Append(MakeBatch("t", 0, 10), absl::InfiniteFuture()).ok());
  }
  auto refused = (*spool)->Append(MakeBatch("t", 0, 10), absl::InfiniteFuture());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ((*spool)->Counters().pending_batches, 3);  // nothing dropped, nothing added
  ASSERT_TRUE((*spool)->Ack({{1, 10, one}}).ok());
  EXPECT_TRUE((*spool)->Append(MakeBatch("t", 0, 10), absl::InfiniteFuture()).ok());
  // A batch larger than the whole spool can never fit.
  EXPECT_EQ((*spool)->Reserve(4 * one, absl::InfiniteFuture()).code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(SpoolTest, FullWithBlockPolicyWaitsForRoomOrItsDeadline) {
  TempDir dir("spool-test");
  const int64_t one = spool_format::BatchValueSize(1, MakeBatch("t", 0, 10).records.size());
  auto spool =
      Spool::Open(dir.path(), {.max_bytes = 2 * one, .when_full = SpoolFullPolicy::kBlock});
  ASSERT_TRUE(spool.ok());
  ASSERT_TRUE((*spool)->Append(MakeBatch("t", 0, 10), absl::InfiniteFuture()).ok());
  ASSERT_TRUE((*spool)->Append(MakeBatch("t", 0, 10), absl::InfiniteFuture()).ok());
  // With a deadline and nobody acknowledging: RESOURCE_EXHAUSTED once it passes.
  auto timed_out = (*spool)->Append(MakeBatch("t", 0, 10), absl::Now() + absl::Milliseconds(100));
  EXPECT_EQ(timed_out.status().code(), absl::StatusCode::kResourceExhausted);
  // Blocked, then released by an ack from another thread.
  absl::Notification appended;
  absl::StatusOr<AppendedBatch> result;
  std::thread appender([&] {
    result = (*spool)->Append(MakeBatch("t", 0, 10), absl::Now() + absl::Seconds(30));
    appended.Notify();
  });
  EXPECT_FALSE(appended.WaitForNotificationWithTimeout(absl::Milliseconds(50)));
  ASSERT_TRUE((*spool)->Ack({{1, 10, one}}).ok());
  appender.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->id, 3u);
  EXPECT_EQ(result->base_sequence, 20);
}

TEST(SpoolTest, SecondOpenOfTheSameDirectoryIsRefused) {
  TempDir dir("spool-test");
  auto first = Spool::Open(dir.path());
  ASSERT_TRUE(first.ok());
  auto second = Spool::Open(dir.path());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("in use by another process"), std::string::npos);
  // Inspect works while it is open.
  auto status = Spool::Inspect(dir.path());
  EXPECT_TRUE(status.ok()) << status.status();
}

TEST(SpoolTest, InspectOfNoSpoolIsNotFound) {
  TempDir dir("spool-test");
  EXPECT_EQ(Spool::Inspect(dir.path() + "/nothing").status().code(), absl::StatusCode::kNotFound);
}

TEST(SpoolTest, DeadLetterKeepsTheBatchAndMovesThePartitionToAFreshProducer) {
  TempDir dir("spool-test");
  auto spool = Spool::Open(dir.path());
  ASSERT_TRUE(spool.ok());
  ASSERT_TRUE((*spool)->SetProducer({7, 0}).ok());
  auto a = (*spool)->Append(MakeBatch("t", 0, 2), absl::InfiniteFuture());
  auto b = (*spool)->Append(MakeBatch("t", 0, 2), absl::InfiniteFuture());
  auto c = (*spool)->Append(MakeBatch("u", 0, 2), absl::InfiniteFuture());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_TRUE((*spool)
                  ->DeadLetter({a->id, 2, a->bytes}, "t", 0, absl::NotFoundError("no topic t"), 7)
                  .ok());
  auto read = (*spool)->Read(0, 10, 1 << 20);
  ASSERT_TRUE(read.ok());
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].id, b->id);
  uint64_t from = 0;
  EXPECT_EQ((*spool)->ProducerFor("t", 0, a->id, &from).producer_id, 7);
  EXPECT_EQ((*spool)->ProducerFor("t", 0, b->id, &from).producer_id, 0);  // to be asked for
  EXPECT_EQ(from, a->id + 1);
  uint64_t other_from = 0;
  EXPECT_EQ((*spool)->ProducerFor("u", 0, c->id, &other_from).producer_id, 7);  // unchanged
  ASSERT_TRUE((*spool)->ResolveOverride("t", 0, from, {9, 0}).ok());
  EXPECT_EQ((*spool)->ProducerFor("t", 0, b->id, &from).producer_id, 9);
  EXPECT_EQ((*spool)->Counters().dead_batches, 1);

  spool->reset();
  auto st = Spool::Inspect(dir.path());
  ASSERT_TRUE(st.ok()) << st.status();
  ASSERT_EQ(st->dead_letters.size(), 1u);
  EXPECT_EQ(st->dead_letters[0].id, a->id);
  EXPECT_EQ(st->dead_letters[0].records, 2);
  EXPECT_NE(st->dead_letters[0].reason.find("NOT_FOUND"), std::string::npos);
  EXPECT_EQ(st->pending_records, 4);
  spool = Spool::Open(dir.path());
  ASSERT_TRUE(spool.ok());
  EXPECT_EQ((*spool)->ProducerFor("t", 0, b->id, &from).producer_id, 9);  // persisted
  EXPECT_EQ((*spool)->Counters().dead_records, 2);
}

// A writer SIGKILLed while appending: after reopening, every batch it reported durable is there,
// in order, with the id and sequence it reported, and appends continue the sequences.
TEST(SpoolTest, CrashAndResumeKeepsEverythingReportedDurable) {
  TempDir dir("spool-crash");
  const std::string path = dir.path() + "/spool";
  auto child = evlog::testing::ChildProcess::Start({EVLOG_SPOOL_CHILD_PATH, path});
  ASSERT_TRUE(child.ok()) << child.status();
  ASSERT_TRUE((*child)->WaitForLines(
      [](const std::vector<std::string>& lines) { return lines.size() >= 200; },
      absl::Now() + absl::Seconds(60)))
      << (*child)->Stderr();
  (*child)->Signal(SIGKILL);
  (*child)->Wait(absl::Now() + absl::Seconds(10));
  const std::vector<std::string> lines = (*child)->Lines();

  auto spool = Spool::Open(path);
  ASSERT_TRUE(spool.ok()) << spool.status();
  auto read = (*spool)->Read(0, 1 << 20, int64_t{1} << 40);
  ASSERT_TRUE(read.ok());
  ASSERT_GE(read->size(), lines.size());
  int64_t next_seq[2] = {0, 0};
  for (size_t i = 0; i < read->size(); ++i) {
    const SpoolBatch& b = (*read)[i];
    ASSERT_TRUE(b.integrity.ok()) << b.integrity;
    EXPECT_EQ(b.id, i + 1);  // no hole
    EXPECT_EQ(b.base_sequence, next_seq[b.partition]);
    next_seq[b.partition] += b.record_count;
    if (i < lines.size()) {
      std::vector<std::string> f = absl::StrSplit(lines[i], ' ');
      ASSERT_EQ(f.size(), 5u) << lines[i];
      EXPECT_EQ(f[1], std::to_string(b.id));
      EXPECT_EQ(f[2], std::to_string(b.partition));
      EXPECT_EQ(f[3], std::to_string(b.base_sequence));
      EXPECT_EQ(f[4], std::to_string(b.record_count));
    }
  }
  auto more = (*spool)->Append(MakeBatch("crash", 0, 1), absl::InfiniteFuture());
  ASSERT_TRUE(more.ok());
  EXPECT_EQ(more->id, read->size() + 1);
  EXPECT_EQ(more->base_sequence, next_seq[0]);
}

}  // namespace
}  // namespace evlog::client
