#include "storage/log_store.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/batch_codec.h"
#include "storage/meta_format.h"
#include "storage/segment_file.h"
#include "storage/testing/corrupt_batch.h"

namespace evlog::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / absl::StrCat("evlog_store_test_", getpid(), "_", counter_++,
                                                     "_", std::random_device()());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string path() const { return path_.string(); }

 private:
  static inline std::atomic<int> counter_{0};
  fs::path path_;
};

// A clock the test moves by hand.
struct FakeClock {
  absl::Mutex mu;
  absl::Time now = absl::FromUnixMillis(1'700'000'000'000);
  absl::Time Now() {
    absl::MutexLock l(&mu);
    return now;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&mu);
    now += d;
  }
};

Options TestOptions() {
  Options o;
  o.retention_check_interval = absl::ZeroDuration();  // tests call RunRetention themselves
  return o;
}

std::unique_ptr<LogStore> OpenOrDie(const std::string& dir, const Options& options) {
  absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(dir, options);
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

std::vector<Record> MakeRecords(int n, const std::string& prefix, int64_t ts = -1) {
  std::vector<Record> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(
        {.timestamp_ms = ts, .key = absl::StrCat("k", i), .value = absl::StrCat(prefix, "-", i)});
  }
  return out;
}

std::vector<Record> ReadAll(LogStore& store, const std::string& topic, int32_t partition,
                            int64_t from) {
  std::vector<Record> all;
  int64_t offset = from;
  for (;;) {
    absl::StatusOr<ReadResult> r = store.Read(topic, partition, offset, {.max_bytes = 4096});
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->records.empty()) break;
    for (Record& rec : r->records) all.push_back(std::move(rec));
    offset = r->next_offset;
  }
  return all;
}

TEST(LogStoreTest, OpenCreatesTheDirectory) {
  TempDir dir;
  const std::string nested = dir.path() + "/a/b";
  auto store = OpenOrDie(nested, TestOptions());
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(fs::exists(nested));
  EXPECT_TRUE(store->ListTopics().empty());
}

TEST(LogStoreTest, SecondOpenOfTheSameDirectoryIsRefused) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), TestOptions());
  absl::StatusOr<std::unique_ptr<LogStore>> second = LogStore::Open(dir.path(), TestOptions());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
}

TEST(LogStoreTest, IncompatibleFormatVersionIsRefused) {
  TempDir dir;
  { auto store = OpenOrDie(dir.path(), TestOptions()); }
  {
    rocksdb::DBOptions db_options;
    std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {{rocksdb::kDefaultColumnFamilyName, {}},
                                                        {meta::kMetaColumnFamily, {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(db_options, dir.path(), cfs, &handles, &db).ok());
    ASSERT_TRUE(db->Put({}, handles[1], meta::kFormatKey, meta::EncodeU64(99)).ok());
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(dir.path(), TestOptions());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store.status().message(), HasSubstr("version 99"));
}

TEST(LogStoreTest, TopicLifecycle) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), TestOptions());
  ASSERT_TRUE(store->CreateTopic("orders", {.partitions = 3, .retention_ms = 1000}).ok());
  ASSERT_TRUE(store->CreateTopic("a.b_c-D", {}).ok());
  EXPECT_EQ(store->CreateTopic("orders", {}).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(store->ListTopics(), ElementsAre("a.b_c-D", "orders"));

  absl::StatusOr<TopicInfo> info = store->DescribeTopic("orders");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->config.partitions, 3);
  EXPECT_EQ(info->config.retention_ms, 1000);
  ASSERT_EQ(info->partitions.size(), 3u);
  EXPECT_EQ(info->partitions[2].end_offset, 0);

  ASSERT_TRUE(store->DeleteTopic("orders").ok());
  EXPECT_EQ(store->DeleteTopic("orders").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->DescribeTopic("orders").status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(store->ListTopics(), ElementsAre("a.b_c-D"));
}

TEST(LogStoreTest, InvalidTopicsAreRefused) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), TestOptions());
  for (const std::string& bad : {std::string(), std::string("a b"), std::string("x/y"),
                                 std::string(250, 'a'), std::string("é")}) {
    EXPECT_EQ(store->CreateTopic(bad, {}).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(store->CreateTopic(std::string(249, 'a'), {}).ok());
  EXPECT_EQ(store->CreateTopic("p0", {.partitions = 0}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->CreateTopic("p", {.partitions = 4097}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store->CreateTopic("p", {.partitions = 4096}).ok());
  EXPECT_EQ(store->CreateTopic("r", {.retention_ms = -2}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LogStoreTest, AppendAndReadRoundTrip) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), TestOptions());
  ASSERT_TRUE(store->CreateTopic("t", {.partitions = 2}).ok());
  std::vector<Record> batch = MakeRecords(5, "a", 1234);
  batch[1].headers = {{"trace", "abc"}, {"bin", std::string("\0\xff", 2)}};
  absl::StatusOr<AppendResult> r = store->Append("t", 1, batch);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->base_offset, 0);
  EXPECT_EQ(r->last_offset, 4);
  r = store->Append("t", 1, MakeRecords(3, "b"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->base_offset, 5);

  std::vector<Record> all = ReadAll(*store, "t", 1, 0);
  ASSERT_EQ(all.size(), 8u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(all[i].offset, i);
  EXPECT_EQ(all[1].headers, batch[1].headers);
  EXPECT_EQ(all[1].timestamp_ms, 1234);
  EXPECT_EQ(all[6].value, "b-1");
  EXPECT_GT(all[6].timestamp_ms, 1'600'000'000'000);  // server clock filled in

  // Reading in the middle of a batch starts at that offset.
  absl::StatusOr<ReadResult> mid = store->Read("t", 1, 3, {.max_records = 3});
  ASSERT_TRUE(mid.ok());
  ASSERT_EQ(mid->records.size(), 3u);
  EXPECT_EQ(mid->records[0].offset, 3);
  EXPECT_EQ(mid->next_offset, 6);
  // An end offset bounds the read.
  mid = store->Read("t", 1, 0, {.end_offset = 2});
  ASSERT_TRUE(mid.ok());
  EXPECT_EQ(mid->records.size(), 2u);

  // At the end: nothing. Past the end or on a missing partition: OUT_OF_RANGE.
  absl::StatusOr<ReadResult> end = store->Read("t", 1, 8, {});
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->records.empty());
  EXPECT_EQ(end->high_watermark, 8);
  EXPECT_EQ(store->Read("t", 1, 9, {}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(store->Read("t", 1, 9, {}).status().message(), HasSubstr("[0, 8]"));
  EXPECT_EQ(store->Read("t", 1, -1, {}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store->Read("t", 2, 0, {}).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store->Read("nope", 0, 0, {}).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->Append("t", 5, MakeRecords(1, "x")).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store->Append("t", 0, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->Append("nope", 0, MakeRecords(1, "x")).status().code(),
            absl::StatusCode::kNotFound);
  // Partition 0 untouched.
  EXPECT_EQ(store->DescribeTopic("t")->partitions[0].end_offset, 0);
}

TEST(LogStoreTest, ReadsAcrossSegmentRollsAndRecovery) {
  TempDir dir;
  Options options = TestOptions();
  options.segment_max_bytes = 500;  // a few batches per segment
  {
    auto store = OpenOrDie(dir.path(), options);
    ASSERT_TRUE(store->CreateTopic("t", {.partitions = 2}).ok());
    for (int i = 0; i < 60; ++i) {
      ASSERT_TRUE(store->Append("t", i % 2, MakeRecords(1 + i % 4, absl::StrCat("b", i))).ok());
    }
    EXPECT_GT(store->Stats().segments_rolled, 5u);
    std::vector<Record> all = ReadAll(*store, "t", 0, 0);
    for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i].offset, static_cast<int64_t>(i));
  }
  auto store = OpenOrDie(dir.path(), options);
  absl::StatusOr<TopicInfo> info = store->DescribeTopic("t");
  ASSERT_TRUE(info.ok());
  int64_t total = 0;
  for (int p = 0; p < 2; ++p) {
    std::vector<Record> all = ReadAll(*store, "t", p, 0);
    ASSERT_EQ(static_cast<int64_t>(all.size()), info->partitions[p].end_offset);
    for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i].offset, static_cast<int64_t>(i));
    total += all.size();
  }
  EXPECT_EQ(total, 60 / 4 * (1 + 2 + 3 + 4));
  // The log continues where it stopped.
  absl::StatusOr<AppendResult> r = store->Append("t", 0, MakeRecords(1, "after"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->base_offset, info->partitions[0].end_offset);
}

TEST(LogStoreTest, ConcurrentAppendersGetDenseOrderedOffsetsAndShareFsyncs) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), TestOptions());
  ASSERT_TRUE(store->CreateTopic("t", {.partitions = 2}).ok());
  constexpr int kThreads = 16, kPerThread = 100;
  std::vector<std::thread> threads;
  absl::Mutex mu;
  std::map<int64_t, std::string> acked;  // partition 0: base offset -> value
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::string value = absl::StrCat(t, ":", i);
        absl::StatusOr<AppendResult> r = store->Append("t", t % 2, {{.key = "k", .value = value}});
        ASSERT_TRUE(r.ok()) << r.status();
        if (t % 2 == 0) {
          absl::MutexLock l(&mu);
          acked[r->base_offset] = value;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<Record> all = ReadAll(*store, "t", 0, 0);
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads / 2 * kPerThread));
  std::map<int, int> last_seen;
  for (size_t i = 0; i < all.size(); ++i) {
    ASSERT_EQ(all[i].offset, static_cast<int64_t>(i));
    EXPECT_EQ(acked.at(i), all[i].value);
    // Each thread's records appear in the order it appended them.
    const int thread = std::stoi(all[i].value.substr(0, all[i].value.find(':')));
    const int seq = std::stoi(all[i].value.substr(all[i].value.find(':') + 1));
    if (last_seen.contains(thread)) {
      EXPECT_GT(seq, last_seen[thread]);
    }
    last_seen[thread] = seq;
  }
  StoreStats stats = store->Stats();
  EXPECT_EQ(stats.appends, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LT(stats.fsyncs, stats.appends);  // group commit: appends share fsyncs
}

TEST(LogStoreTest, WaitForDataWakesOnAppendAndTimesOut) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), TestOptions());
  ASSERT_TRUE(store->CreateTopic("t", {}).ok());
  absl::StatusOr<bool> r = store->WaitForData("t", 0, 0, absl::Now() + absl::Milliseconds(20));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  std::thread appender([&] { ASSERT_TRUE(store->Append("t", 0, MakeRecords(1, "x")).ok()); });
  r = store->WaitForData("t", 0, 0, absl::Now() + absl::Seconds(30));
  appender.join();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  EXPECT_EQ(store->WaitForData("t", 3, 0, absl::Now()).status().code(),
            absl::StatusCode::kOutOfRange);
}

TEST(LogStoreTest, OffsetForTimestamp) {
  TempDir dir;
  Options options = TestOptions();
  options.segment_max_bytes = 500;
  auto store = OpenOrDie(dir.path(), options);
  ASSERT_TRUE(store->CreateTopic("t", {}).ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(2, "v", 1000 + i * 10)).ok());  // 2 per ts
  }
  EXPECT_EQ(*store->OffsetForTimestamp("t", 0, 0), 0);
  EXPECT_EQ(*store->OffsetForTimestamp("t", 0, 1000), 0);
  EXPECT_EQ(*store->OffsetForTimestamp("t", 0, 1001), 2);
  EXPECT_EQ(*store->OffsetForTimestamp("t", 0, 1100), 20);
  EXPECT_EQ(*store->OffsetForTimestamp("t", 0, 1190), 38);
  EXPECT_EQ(*store->OffsetForTimestamp("t", 0, 5000), 40);  // none: the end offset
}

TEST(LogStoreTest, RetentionByTimeDropsSegmentsAndRaisesStartOffset) {
  TempDir dir;
  FakeClock clock;
  Options options = TestOptions();
  options.clock = [&] { return clock.Now(); };
  options.segment_max_bytes = 1000;
  auto store = OpenOrDie(dir.path(), options);
  ASSERT_TRUE(store->CreateTopic("short", {.retention_ms = 60'000}).ok());
  ASSERT_TRUE(store->CreateTopic("forever", {}).ok());
  for (int i = 0; i < 30; ++i) {
    ASSERT_TRUE(store->Append("short", 0, MakeRecords(2, "s")).ok());
    ASSERT_TRUE(store->Append("forever", 0, MakeRecords(2, "f")).ok());
  }
  const uint64_t segments_before = store->Stats().segments;
  clock.Advance(absl::Minutes(2));
  ASSERT_TRUE(store->Append("short", 0, MakeRecords(1, "new")).ok());
  ASSERT_TRUE(store->RunRetention().ok());

  absl::StatusOr<TopicInfo> info = store->DescribeTopic("short");
  ASSERT_TRUE(info.ok());
  const int64_t start = info->partitions[0].start_offset;
  EXPECT_GT(start, 0);
  EXPECT_EQ(info->partitions[0].end_offset, 61);
  EXPECT_LT(store->Stats().segments, segments_before);
  EXPECT_EQ(store->Read("short", 0, 0, {}).status().code(), absl::StatusCode::kOutOfRange);
  std::vector<Record> rest = ReadAll(*store, "short", 0, start);
  EXPECT_EQ(static_cast<int64_t>(rest.size()), 61 - start);
  EXPECT_EQ(rest.back().value, "new-0");
  // The neighbour keeps everything.
  EXPECT_EQ(store->DescribeTopic("forever")->partitions[0].start_offset, 0);
  EXPECT_EQ(ReadAll(*store, "forever", 0, 0).size(), 60u);

  // Start offsets survive a restart.
  store.reset();
  store = OpenOrDie(dir.path(), options);
  EXPECT_EQ(store->DescribeTopic("short")->partitions[0].start_offset, start);
  EXPECT_EQ(ReadAll(*store, "short", 0, start).size(), rest.size());
}

TEST(LogStoreTest, RetentionByBytesKeepsAboutTheLimit) {
  TempDir dir;
  Options options = TestOptions();
  options.segment_max_bytes = 4096;
  auto store = OpenOrDie(dir.path(), options);
  ASSERT_TRUE(store->CreateTopic("t", {.retention_bytes = 8192}).ok());
  for (int i = 0; i < 100; ++i) {
    Record r{.value = std::string(400, 'x')};
    ASSERT_TRUE(store->Append("t", 0, {r}).ok());
  }
  ASSERT_TRUE(store->RunRetention().ok());
  absl::StatusOr<TopicInfo> info = store->DescribeTopic("t");
  ASSERT_TRUE(info.ok());
  EXPECT_GT(info->partitions[0].start_offset, 50);
  EXPECT_GE(info->partitions[0].bytes, 8192u);
  EXPECT_LE(info->partitions[0].bytes, 8192u + 2 * 4096u);
}

TEST(LogStoreTest, RetentionWhileReadersRead) {
  TempDir dir;
  FakeClock clock;
  Options options = TestOptions();
  options.clock = [&] { return clock.Now(); };
  options.segment_max_bytes = 2000;
  auto store = OpenOrDie(dir.path(), options);
  ASSERT_TRUE(store->CreateTopic("t", {.retention_ms = 1000}).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, trimmed{0};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      while (!stop) {
        absl::StatusOr<TopicInfo> info = store->DescribeTopic("t");
        ASSERT_TRUE(info.ok());
        int64_t offset = info->partitions[0].start_offset;
        for (;;) {
          absl::StatusOr<ReadResult> r = store->Read("t", 0, offset, {.max_bytes = 512});
          if (!r.ok()) {
            // Only retention passing us by is acceptable; never corruption.
            ASSERT_EQ(r.status().code(), absl::StatusCode::kOutOfRange) << r.status();
            ++trimmed;
            break;
          }
          for (const Record& rec : r->records) {
            ASSERT_EQ(rec.offset, offset);
            ASSERT_EQ(rec.value, absl::StrCat("v", rec.offset));
            ++offset;
          }
          ++reads;
          if (r->records.empty()) break;
        }
      }
    });
  }
  for (int i = 0; i < 400; ++i) {
    ASSERT_TRUE(store->Append("t", 0, {{.value = absl::StrCat("v", i)}}).ok());
    if (i % 20 == 19) {
      clock.Advance(absl::Seconds(2));
      ASSERT_TRUE(store->RunRetention().ok());
    }
  }
  stop = true;
  for (auto& th : readers) th.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_GT(store->Stats().segments_dropped, 5u);
}

TEST(LogStoreTest, DeletingATopicDropsItsSegments) {
  TempDir dir;
  Options options = TestOptions();
  options.segment_max_bytes = 1 << 16;
  {
    auto store = OpenOrDie(dir.path(), options);
    ASSERT_TRUE(store->CreateTopic("big", {}).ok());
    ASSERT_TRUE(store->CreateTopic("small", {}).ok());
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(store->Append("big", 0, {{.value = std::string(10000, 'b')}}).ok());
    }
    ASSERT_TRUE(store->Append("small", 0, {{.value = "s"}}).ok());
    EXPECT_GT(store->Stats().segments, 5u);
    ASSERT_TRUE(store->DeleteTopic("big").ok());
    EXPECT_EQ(store->Stats().segments, 1u);
    // A new topic of the same name starts empty.
    ASSERT_TRUE(store->CreateTopic("big", {}).ok());
    EXPECT_EQ(store->DescribeTopic("big")->partitions[0].end_offset, 0);
  }
  std::vector<std::string> cfs;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies({}, dir.path(), &cfs).ok());
  int segments = 0;
  for (const std::string& cf : cfs) segments += cf.rfind(meta::kSegmentPrefix, 0) == 0;
  EXPECT_EQ(segments, 2);  // "small" and the new "big"
  auto store = OpenOrDie(dir.path(), options);
  EXPECT_EQ(ReadAll(*store, "small", 0, 0).size(), 1u);
  EXPECT_EQ(store->DescribeTopic("big")->partitions[0].end_offset, 0);
}

TEST(LogStoreTest, CorruptedBatchIsReportedNotReturned) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path(), TestOptions());
    ASSERT_TRUE(store->CreateTopic("t", {}).ok());
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(3, "a")).ok());
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(3, "b")).ok());
  }
  // Flip a bit of the second batch, behind the store's back.
  ASSERT_TRUE(testing::CorruptStoredBatch(dir.path(), 1, 0, 3).ok());
  auto store = OpenOrDie(dir.path(), TestOptions());
  absl::StatusOr<ReadResult> r = store->Read("t", 0, 0, {.max_records = 3});
  ASSERT_TRUE(r.ok());  // the first batch is intact
  EXPECT_EQ(r->records.size(), 3u);
  r = store->Read("t", 0, 3, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("CRC"));
  r = store->Read("t", 0, 0, {});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
}

TEST(LogStoreTest, RawBatchesRoundTripByteForByte) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), TestOptions());
  ASSERT_TRUE(store->CreateTopic("leader", {}).ok());
  ASSERT_TRUE(store->CreateTopic("follower", {}).ok());
  ASSERT_TRUE(store
                  ->Append("leader", 0, MakeRecords(4, "a", 77),
                           {.producer_id = 9, .producer_epoch = 1, .base_sequence = 0})
                  .ok());
  ASSERT_TRUE(store->Append("leader", 0, MakeRecords(2, "b", 78)).ok());
  absl::StatusOr<std::vector<RawBatch>> raw = store->ReadRaw("leader", 0, 1, 1 << 20);
  ASSERT_TRUE(raw.ok());
  ASSERT_EQ(raw->size(), 2u);
  EXPECT_EQ((*raw)[0].base_offset, 0);  // the batch holding offset 1
  EXPECT_EQ((*raw)[1].base_offset, 4);
  for (const RawBatch& b : *raw) {
    absl::StatusOr<AppendResult> r = store->AppendRaw("follower", 0, b.bytes);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->base_offset, b.base_offset);
  }
  absl::StatusOr<std::vector<RawBatch>> copy = store->ReadRaw("follower", 0, 0, 1 << 20);
  ASSERT_TRUE(copy.ok());
  ASSERT_EQ(copy->size(), 2u);
  EXPECT_EQ((*copy)[0].bytes, (*raw)[0].bytes);
  EXPECT_EQ(VerifyBatch((*copy)[0].bytes)->producer.producer_id, 9);

  std::string bad = (*raw)[1].bytes;
  bad[bad.size() - 1] ^= 1;
  EXPECT_EQ(store->AppendRaw("follower", 0, bad).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(store->DescribeTopic("follower")->partitions[0].end_offset, 6);
}

// Reads partition `p` from `from` to the high watermark with ReadBatches in small steps, with
// `cursor` (may be null); calls `between(step)` after each call. Returns base offset -> bytes.
std::map<int64_t, std::string> ReadBatchesFrom(LogStore& store, int32_t p, int64_t from,
                                               ReadCursor* cursor,
                                               const std::function<void(int)>& between) {
  std::map<int64_t, std::string> out;
  int64_t next = from;
  for (int step = 0;; ++step) {
    absl::StatusOr<RawReadResult> r =
        store.ReadBatches("t", p, next, {.max_bytes = 300, .max_records = 1000}, cursor);
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok() || r->batches.empty()) break;
    for (RawBatch& b : r->batches) {
      EXPECT_LE(b.base_offset, next) << "not dense at " << next;
      absl::StatusOr<BatchHeader> h = VerifyBatch(b.bytes);
      EXPECT_TRUE(h.ok()) << h.status();
      if (!h.ok()) return out;
      next = b.base_offset + h->record_count;
      out[b.base_offset] = std::move(b.bytes);
    }
    between(step);
  }
  return out;
}

TEST(LogStoreTest, CursorReadsWhatFreshReadsReadAcrossRollsAndLaterAppends) {
  TempDir dir;
  Options options = TestOptions();
  options.segment_max_bytes = 500;  // a few batches per segment
  auto store = OpenOrDie(dir.path(), options);
  ASSERT_TRUE(store->CreateTopic("t", {.partitions = 2}).ok());
  int appended = 0;
  auto append = [&](int n) {
    for (int i = 0; i < n; ++i, ++appended) {
      ASSERT_TRUE(store
                      ->Append("t", appended % 2,
                               MakeRecords(1 + appended % 4, absl::StrCat("b", appended)))
                      .ok());
    }
  };
  append(60);
  ASSERT_GT(store->Stats().segments_rolled, 5u);

  ReadCursor cursor;
  // While the cursor walks, more batches arrive (and segments roll): it must end its walk at
  // what it could see and go on from there, never skip or repeat a batch.
  std::map<int64_t, std::string> walked = ReadBatchesFrom(*store, 0, 0, &cursor, [&](int step) {
    if (step % 3 == 1) append(7);
  });
  std::map<int64_t, std::string> fresh = ReadBatchesFrom(*store, 0, 0, nullptr, [](int) {});
  ASSERT_GT(appended, 60);
  EXPECT_EQ(walked, fresh);
  EXPECT_EQ(walked.rbegin()->first + VerifyBatch(walked.rbegin()->second)->record_count,
            store->DescribeTopic("t")->partitions[0].end_offset);

  // The same cursor on another partition, and starting inside a batch: it starts afresh.
  std::map<int64_t, std::string> other = ReadBatchesFrom(*store, 1, 1, &cursor, [](int) {});
  EXPECT_EQ(other, ReadBatchesFrom(*store, 1, 1, nullptr, [](int) {}));
  EXPECT_EQ(other.begin()->first, 0);  // the batch holding offset 1

  // The store lets go of an idle cursor's storage state on its own (it pins memtables), and
  // the next read just seeks again.
  ASSERT_TRUE(store->ReadBatches("t", 0, 0, {.max_bytes = 1}, &cursor).ok());
  ASSERT_TRUE(cursor.holds_state());
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (cursor.holds_state() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(50));
  EXPECT_FALSE(cursor.holds_state());
  absl::StatusOr<RawReadResult> again = store->ReadBatches("t", 0, 0, {.max_bytes = 1}, &cursor);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->batches.front().bytes, fresh.begin()->second);
}

TEST(LogStoreTest, CursorInADroppedSegmentReadsNoMore) {
  TempDir dir;
  FakeClock clock;
  Options options = TestOptions();
  options.clock = [&] { return clock.Now(); };
  options.segment_max_bytes = 500;
  auto store = OpenOrDie(dir.path(), options);
  ASSERT_TRUE(store->CreateTopic("t", {.retention_ms = 1000}).ok());
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(2, absl::StrCat("b", i))).ok());
  }
  ReadCursor cursor;
  absl::StatusOr<RawReadResult> first =
      store->ReadBatches("t", 0, 0, {.max_bytes = 1, .max_records = 1000}, &cursor);
  ASSERT_TRUE(first.ok()) << first.status();
  const int64_t next = first->batches.back().base_offset + 2;
  clock.Advance(absl::Seconds(5));
  ASSERT_TRUE(store->Append("t", 0, MakeRecords(1, "new")).ok());
  ASSERT_TRUE(store->RunRetention().ok());
  ASSERT_GT(store->DescribeTopic("t")->partitions[0].start_offset, next);
  // Retention passed the reader by: OUT_OF_RANGE as without a cursor, not stale data.
  EXPECT_EQ(store->ReadBatches("t", 0, next, {}, &cursor).status().code(),
            absl::StatusCode::kOutOfRange);
  store->DeleteTopic("t").IgnoreError();
  EXPECT_EQ(store->ReadBatches("t", 0, next, {}, &cursor).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(LogStoreTest, CursorFromBeforeATruncationDoesNotServeTheOldSuffix) {
  TempDir dir;
  auto store = OpenOrDie(dir.path(), TestOptions());
  ASSERT_TRUE(store->CreateTopic("t", {}).ok());
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(3, absl::StrCat("old", i))).ok());
  }
  ReadCursor cursor;
  absl::StatusOr<RawReadResult> first =
      store->ReadBatches("t", 0, 0, {.max_bytes = 1, .max_records = 1000}, &cursor);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->batches.size(), 1u);  // the cursor stands in the old data at offset 3
  ASSERT_TRUE(store->TruncateTo("t", 0, 6).ok());
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(3, absl::StrCat("new", i))).ok());
  }
  // Offsets 6.. now hold other records; reading on from 3 must return them, not the old ones.
  std::map<int64_t, std::string> walked = ReadBatchesFrom(*store, 0, 3, &cursor, [](int) {});
  EXPECT_EQ(walked, ReadBatchesFrom(*store, 0, 3, nullptr, [](int) {}));
  ASSERT_EQ(walked.size(), 4u);
  std::vector<Record> records;
  ASSERT_TRUE(DecodeRecords(walked.rbegin()->second, 12, 12, 3, &records).ok());
  EXPECT_EQ(records.front().value, "new2-0");

  // A truncation below where a cursor stands, and new data past it again.
  ReadCursor below;
  ASSERT_TRUE(store->ReadBatches("t", 0, 9, {.max_bytes = 1, .max_records = 1000}, &below).ok());
  ASSERT_TRUE(store->TruncateTo("t", 0, 3).ok());
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(3, absl::StrCat("newer", i))).ok());
  }
  walked = ReadBatchesFrom(*store, 0, 12, &below, [](int) {});
  ASSERT_EQ(walked.size(), 1u);
  records.clear();
  ASSERT_TRUE(DecodeRecords(walked.begin()->second, 12, 12, 3, &records).ok());
  EXPECT_EQ(records.front().value, "newer3-0");
}

TEST(LogStoreTest, TruncateToDropsEverythingAboveABatchBoundary) {
  TempDir dir;
  Options options = TestOptions();
  options.segment_max_bytes = 300;
  {
    auto store = OpenOrDie(dir.path(), options);
    ASSERT_TRUE(store->CreateTopic("t", {}).ok());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(store->Append("t", 0, MakeRecords(3, "v")).ok());
    EXPECT_EQ(store->TruncateTo("t", 0, 31).code(), absl::StatusCode::kOutOfRange);
    EXPECT_EQ(store->TruncateTo("t", 0, 10).code(), absl::StatusCode::kInvalidArgument);
    ASSERT_TRUE(store->TruncateTo("t", 0, 12).ok());
    EXPECT_EQ(store->DescribeTopic("t")->partitions[0].end_offset, 12);
    EXPECT_EQ(ReadAll(*store, "t", 0, 0).size(), 12u);
    absl::StatusOr<AppendResult> r = store->Append("t", 0, MakeRecords(1, "after"));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->base_offset, 12);
  }
  auto store = OpenOrDie(dir.path(), options);
  std::vector<Record> all = ReadAll(*store, "t", 0, 0);
  ASSERT_EQ(all.size(), 13u);
  EXPECT_EQ(all.back().value, "after-0");
}

TEST(LogStoreTest, AFloodedTopicIsPushedBackWhileOthersWrite) {
  TempDir dir;
  Options options = TestOptions();
  options.max_topic_queued_bytes = 16 << 10;
  options.max_queued_bytes = 64 << 10;
  auto store = OpenOrDie(dir.path(), options);
  ASSERT_TRUE(store->CreateTopic("flood", {}).ok());
  ASSERT_TRUE(store->CreateTopic("quiet", {}).ok());
  constexpr int kBatches = 1000;
  absl::Mutex mu;
  int done = 0, accepted = 0, refused = 0;
  for (int i = 0; i < kBatches; ++i) {
    store->AppendAsync("flood", 0, {{.value = std::string(4096, 'f')}}, {},
                       [&](absl::StatusOr<AppendResult> r) {
                         absl::MutexLock l(&mu);
                         ++done;
                         if (r.ok()) {
                           ++accepted;
                         } else {
                           EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
                           ++refused;
                         }
                       });
  }
  // The quiet topic is admitted however full the flood's queue is.
  ASSERT_TRUE(store->Append("quiet", 0, {{.value = "q"}}).ok());
  absl::MutexLock l(&mu);
  mu.Await(absl::Condition(
      +[](int* d) { return *d == kBatches; }, &done));
  EXPECT_GT(refused, 0);
  EXPECT_GT(accepted, 0);
  EXPECT_EQ(store->DescribeTopic("flood")->partitions[0].end_offset, accepted);
}

TEST(LogStoreTest, IntervalPolicyAcknowledgesAndSyncs) {
  TempDir dir;
  Options options = TestOptions();
  options.fsync_policy = FsyncPolicy::kInterval;
  options.fsync_interval = absl::Milliseconds(5);
  auto store = OpenOrDie(dir.path(), options);
  ASSERT_TRUE(store->CreateTopic("t", {}).ok());
  ASSERT_TRUE(store->Append("t", 0, MakeRecords(10, "v")).ok());
  ASSERT_TRUE(store->Sync().ok());
  EXPECT_GE(store->Stats().fsyncs, 1u);
  EXPECT_EQ(ReadAll(*store, "t", 0, 0).size(), 10u);
}

// Replaces the durable length recorded for segment 1 of topic 1 (segment_file_format.h), as a
// power cut under kInterval can leave it behind the data file's locations.
void SetDurableLength(const std::string& dir, uint64_t length) {
  std::vector<std::string> names;
  ASSERT_TRUE(rocksdb::DB::ListColumnFamilies({}, dir, &names).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open({}, dir, cfs, &handles, &db).ok());
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] != meta::kMetaColumnFamily) continue;
    rocksdb::WriteOptions wo;
    wo.sync = true;
    ASSERT_TRUE(
        db->Put(wo, handles[i], meta::SegmentDurableKey(1, 1), meta::EncodeU64(length)).ok());
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  delete db;
}

TEST(LogStoreTest, AFrameLostPastTheDurableLengthTruncatesItsPartitionAtOpen) {
  TempDir dir;
  Options options = TestOptions();
  options.fsync_policy = FsyncPolicy::kInterval;
  {
    auto store = OpenOrDie(dir.path(), options);
    ASSERT_TRUE(store->CreateTopic("t", {.partitions = 2}).ok());
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(3, "a")).ok());
    ASSERT_TRUE(store->Append("t", 1, MakeRecords(2, "x")).ok());
    ASSERT_TRUE(store
                    ->Append("t", 0, MakeRecords(3, "b"),
                             {.producer_id = 5, .producer_epoch = 0, .base_sequence = 0})
                    .ok());
    ASSERT_TRUE(store
                    ->Append("t", 0, MakeRecords(3, "c"),
                             {.producer_id = 5, .producer_epoch = 0, .base_sequence = 3})
                    .ok());
  }
  // The power cut: the last frame (partition 0's "c" batch) lost its tail, and the durable
  // length is from before all of them.
  const std::string path = SegmentFilePath(dir.path(), 1, 1);
  fs::resize_file(path, fs::file_size(path) - 5);
  SetDurableLength(dir.path(), 0);

  {
    auto store = OpenOrDie(dir.path(), options);
    ASSERT_NE(store, nullptr);
    std::vector<Record> p0 = ReadAll(*store, "t", 0, 0);
    ASSERT_EQ(p0.size(), 6u);  // "a" and "b"; "c" is gone
    EXPECT_EQ(p0.back().value, "b-2");
    EXPECT_EQ(ReadAll(*store, "t", 1, 0).size(), 2u);  // untouched
    // The producer forgot the lost batch: its retry is written again, at the next offset.
    absl::StatusOr<AppendResult> retry = store->Append(
        "t", 0, MakeRecords(3, "c"), {.producer_id = 5, .producer_epoch = 0, .base_sequence = 3});
    ASSERT_TRUE(retry.ok()) << retry.status();
    EXPECT_FALSE(retry->duplicate);
    EXPECT_EQ(retry->base_offset, 6);
  }
  auto store = OpenOrDie(dir.path(), options);
  std::vector<Record> p0 = ReadAll(*store, "t", 0, 0);
  ASSERT_EQ(p0.size(), 9u);
  EXPECT_EQ(p0.back().value, "c-2");
}

TEST(LogStoreTest, SegmentFilesGoWithTheirSegments) {
  TempDir dir;
  FakeClock clock;
  Options options = TestOptions();
  options.clock = [&clock] { return clock.Now(); };
  const std::string first = SegmentFilePath(dir.path(), 1, 1);
  {
    auto store = OpenOrDie(dir.path(), options);
    ASSERT_TRUE(store->CreateTopic("t", {.retention_ms = 1000}).ok());
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(3, "a")).ok());
    ASSERT_TRUE(store->RollSegments().ok());
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(3, "b")).ok());
    EXPECT_TRUE(fs::exists(first));
    clock.Advance(absl::Seconds(2));
    ASSERT_TRUE(store->RunRetention().ok());
    EXPECT_FALSE(fs::exists(first));  // its segment expired
    EXPECT_TRUE(fs::exists(SegmentFilePath(dir.path(), 1, 2)));
  }
  // A file without a segment (a crash between dropping a segment and deleting its file) is
  // deleted at open; a deleted topic takes its files along.
  const std::string orphan = SegmentFilePath(dir.path(), 7, 1);
  std::ofstream(orphan) << "left over";
  auto store = OpenOrDie(dir.path(), options);
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_EQ(ReadAll(*store, "t", 0, 3).size(), 3u);
  ASSERT_TRUE(store->DeleteTopic("t").ok());
  EXPECT_FALSE(fs::exists(SegmentFilePath(dir.path(), 1, 2)));
}

// Calls `condition` every 5 ms until it holds or 10 s pass; its last result.
bool EventuallyTrue(const std::function<bool()>& condition) {
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!condition()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// Appends 1-KiB records to partition 0 of "t" until its active segment holds `bytes`.
void FillTo(LogStore& store, int64_t bytes, const std::string& prefix) {
  for (int64_t written = 0; written < bytes; written += 1024) {
    ASSERT_TRUE(
        store.Append("t", 0, {{.key = "k", .value = prefix + std::string(1024, 'v')}}).ok());
  }
}

// Options with 64-KiB segments.
Options SmallSegments() {
  Options options = TestOptions();
  options.segment_max_bytes = 64 << 10;
  return options;
}

// A store in `dir` whose topic "t" (id 1) has 40 records of 1 KiB in its active segment, past
// half of SmallSegments(), and whose next segment (2) has been made ahead.
std::unique_ptr<LogStore> StoreWithASpare(const std::string& dir) {
  auto store = OpenOrDie(dir, SmallSegments());
  EXPECT_TRUE(store->CreateTopic("t", {}).ok());
  FillTo(*store, 40 << 10, "a");
  EXPECT_TRUE(EventuallyTrue([&] { return store->Stats().spares_made == 1; }));
  EXPECT_TRUE(fs::exists(SegmentFilePath(dir, 1, 2)));
  return store;
}

// A roll takes the segment that was made ahead, on the preparer thread, once the active one
// was half full: the writer does not create it.
TEST(LogStoreTest, TheNextSegmentIsMadeAheadAndTheRollTakesIt) {
  TempDir dir;
  const Options options = SmallSegments();
  const std::string second = SegmentFilePath(dir.path(), 1, 2);
  {
    auto store = OpenOrDie(dir.path(), options);
    ASSERT_TRUE(store->CreateTopic("t", {}).ok());
    FillTo(*store, 16 << 10, "a");
    EXPECT_FALSE(fs::exists(second)) << "made before the segment was half full";
    FillTo(*store, 24 << 10, "b");  // past half
    ASSERT_TRUE(EventuallyTrue([&] { return store->Stats().spares_made == 1; }));
    EXPECT_TRUE(fs::exists(second));
    EXPECT_EQ(store->Stats().segments, 1u);  // a spare is not a segment yet
    FillTo(*store, 32 << 10, "c");           // past the end: rolls
    EXPECT_EQ(store->Stats().segments_rolled, 1u);
    EXPECT_EQ(store->Stats().spares_used, 1u);  // the roll took it
    EXPECT_EQ(store->Stats().segments, 2u);
    const std::vector<Record> all = ReadAll(*store, "t", 0, 0);
    ASSERT_EQ(all.size(), 72u);
    for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i].offset, static_cast<int64_t>(i));
  }
  auto store = OpenOrDie(dir.path(), options);
  EXPECT_EQ(store->Stats().segments, 2u);
  EXPECT_EQ(ReadAll(*store, "t", 0, 0).size(), 72u);
}

// A spare that no roll took (the process stopped, or crashed, first) is dropped at open, with
// its file; the log goes on in the segment it was in.
TEST(LogStoreTest, AnUnusedSpareSegmentIsDroppedAtOpen) {
  TempDir dir;
  const Options options = SmallSegments();
  const std::string second = SegmentFilePath(dir.path(), 1, 2);
  StoreWithASpare(dir.path());  // and closed
  {
    auto store = OpenOrDie(dir.path(), options);
    EXPECT_FALSE(fs::exists(second));
    EXPECT_EQ(store->Stats().segments, 1u);
    absl::StatusOr<AppendResult> r = store->Append("t", 0, MakeRecords(1, "after"));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->base_offset, 40);
    FillTo(*store, 40 << 10, "b");  // rolls into a segment 2 made again
    EXPECT_EQ(store->Stats().segments_rolled, 1u);
  }
  auto store = OpenOrDie(dir.path(), options);
  const std::vector<Record> all = ReadAll(*store, "t", 0, 0);
  ASSERT_EQ(all.size(), 81u);
  EXPECT_EQ(all[40].value, "after-0");
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i].offset, static_cast<int64_t>(i));
}

TEST(LogStoreTest, DeletingATopicDropsItsSpareSegment) {
  TempDir dir;
  {
    auto store = StoreWithASpare(dir.path());
    ASSERT_TRUE(store->DeleteTopic("t").ok());
    EXPECT_FALSE(fs::exists(SegmentFilePath(dir.path(), 1, 2)));
    EXPECT_FALSE(fs::exists(SegmentFilePath(dir.path(), 1, 1)));
  }
  auto store = OpenOrDie(dir.path(), SmallSegments());
  EXPECT_TRUE(store->ListTopics().empty());
  EXPECT_EQ(store->Stats().segments, 0u);
}

TEST(LogStoreTest, AMissingSegmentFileWithBatchesIsDataLoss) {
  TempDir dir;
  {
    auto store = OpenOrDie(dir.path(), TestOptions());
    ASSERT_TRUE(store->CreateTopic("t", {}).ok());
    ASSERT_TRUE(store->Append("t", 0, MakeRecords(3, "a")).ok());
  }
  fs::remove(SegmentFilePath(dir.path(), 1, 1));
  absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(dir.path(), TestOptions());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(), HasSubstr("is missing"));
}

}  // namespace
}  // namespace evlog::storage
