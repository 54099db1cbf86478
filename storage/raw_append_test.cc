// LogStore::AppendRawAsync: validated batches are stored byte for byte, get offsets after
// batches of the records path, keep their timestamps, and follow the idempotence rules.
#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "storage/batch_builder.h"
#include "storage/batch_validator.h"
#include "storage/log_store.h"

namespace evlog::storage {
namespace {

namespace fs = std::filesystem;

class RawAppendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("evlog_raw_append_test_", getpid(), "_", std::random_device()());
    Options options;
    options.retention_check_interval = absl::ZeroDuration();
    absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(dir_.string(), options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    ASSERT_TRUE(store_->CreateTopic("t", {.partitions = 2}).ok());
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }

  static ValidatedBatch Batch(std::vector<std::string> values, const ProducerInfo& producer = {},
                              int64_t ts = 1000) {
    std::string bytes;
    BatchBuilder b(&bytes);
    for (const std::string& v : values) b.Add(ts++, "", v);
    b.Finish(producer, 0);
    absl::StatusOr<ValidatedBatch> valid = ValidateBatch(std::move(bytes), {});
    EXPECT_TRUE(valid.ok()) << valid.status();
    return *std::move(valid);
  }

  absl::StatusOr<AppendResult> AppendRaw(int32_t partition, ValidatedBatch batch,
                                         const std::string& topic = "t") {
    absl::Notification done;
    absl::StatusOr<AppendResult> result;
    store_->AppendRawAsync(topic, partition, std::move(batch), [&](absl::StatusOr<AppendResult> r) {
      result = std::move(r);
      done.Notify();
    });
    done.WaitForNotification();
    return result;
  }

  fs::path dir_;
  std::unique_ptr<LogStore> store_;
};

TEST_F(RawAppendTest, StoresTheBytesUnchangedAfterRecordBatches) {
  ASSERT_TRUE(store_->Append("t", 1, {{.key = "a", .value = "first"}}).ok());
  ValidatedBatch batch = Batch({"x", "y", "z"}, {}, /*ts=*/0);
  const std::string bytes = batch.bytes();
  absl::StatusOr<AppendResult> r = AppendRaw(1, std::move(batch));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->base_offset, 1);
  EXPECT_EQ(r->last_offset, 3);
  EXPECT_FALSE(r->duplicate);

  absl::StatusOr<std::vector<RawBatch>> raw = store_->ReadRaw("t", 1, 1, 1 << 20);
  ASSERT_TRUE(raw.ok()) << raw.status();
  ASSERT_EQ(raw->size(), 1u);
  EXPECT_EQ((*raw)[0].base_offset, 1);
  EXPECT_EQ((*raw)[0].bytes, bytes);
  absl::StatusOr<ReadResult> read = store_->Read("t", 1, 0, {});
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->records.size(), 4u);
  EXPECT_EQ(read->records[2].value, "y");
  EXPECT_EQ(read->records[1].timestamp_ms, 0);  // the batch's own timestamp, not the clock
  EXPECT_EQ(read->records[3].timestamp_ms, 2);

  const StoreStats stats = store_->Stats();
  EXPECT_EQ(stats.appends, 2u);
  EXPECT_EQ(stats.records, 4u);
}

TEST_F(RawAppendTest, IdempotentRetryIsADuplicateAndGapsAreRefused) {
  const ProducerInfo first{.producer_id = 7, .producer_epoch = 0, .base_sequence = 0};
  absl::StatusOr<AppendResult> r = AppendRaw(0, Batch({"a", "b"}, first));
  ASSERT_TRUE(r.ok()) << r.status();
  absl::StatusOr<AppendResult> again = AppendRaw(0, Batch({"a", "b"}, first));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(again->base_offset, r->base_offset);
  EXPECT_EQ(again->last_offset, r->last_offset);

  absl::StatusOr<AppendResult> gap =
      AppendRaw(0, Batch({"c"}, {.producer_id = 7, .producer_epoch = 0, .base_sequence = 5}));
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kFailedPrecondition) << gap.status();
  // The records path continues the same producer's sequence.
  absl::StatusOr<AppendResult> next = store_->Append(
      "t", 0, {{.value = "c"}}, {.producer_id = 7, .producer_epoch = 0, .base_sequence = 2});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->base_offset, 2);
  EXPECT_EQ(store_->DescribeTopic("t")->partitions[0].end_offset, 3);
}

TEST_F(RawAppendTest, UnknownTopicOrPartitionIsRefused) {
  EXPECT_EQ(AppendRaw(0, Batch({"a"}), "nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(AppendRaw(2, Batch({"a"})).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(AppendRaw(-1, Batch({"a"})).status().code(), absl::StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace evlog::storage
