// Tests of durable quota settings: their metadata encoding (meta_format.h) and the LogStore
// calls that change them, including that they survive closing and reopening the store.
#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/log_store.h"
#include "storage/meta_format.h"

namespace evlog::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;

class QuotaTempDir {
 public:
  QuotaTempDir() {
    path_ = fs::temp_directory_path() /
            absl::StrCat("evlog_quota_store_test_", getpid(), "_", std::random_device()());
  }
  ~QuotaTempDir() { fs::remove_all(path_); }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

Options TestOptions() {
  Options o;
  o.retention_check_interval = absl::ZeroDuration();
  return o;
}

std::unique_ptr<LogStore> OpenStore(const std::string& dir) {
  auto store = LogStore::Open(dir, TestOptions());
  EXPECT_TRUE(store.ok()) << store.status();
  return store.ok() ? *std::move(store) : nullptr;
}

TEST(QuotaMetaTest, ProducerQuotaKeyIsPrefixAndBigEndianId) {
  EXPECT_EQ(meta::ProducerQuotaKey(7), std::string("q\0\0\0\0\0\0\0\x07", 9));
}

TEST(QuotaMetaTest, ProducerQuotaValueRoundTripsAndMatchesWorkedExample) {
  const Quota q{.bytes_per_sec = 1 << 20, .records_per_sec = 0};
  const std::string v = meta::EncodeProducerQuota(q);
  EXPECT_EQ(v, std::string("\0\0\x10\0\0\0\0\0\0\0\0\0\0\0\0\0", 16));
  EXPECT_EQ(meta::DecodeProducerQuota(v), q);
}

TEST(QuotaMetaTest, ProducerQuotaValueOfWrongSizeOrNegativeIsRejected) {
  EXPECT_FALSE(meta::DecodeProducerQuota("short").has_value());
  std::string negative = meta::EncodeProducerQuota({.bytes_per_sec = -1});
  EXPECT_FALSE(meta::DecodeProducerQuota(negative).has_value());
}

TEST(QuotaMetaTest, TopicRecordCarriesQuotaAndOmitsItWhenUnlimited) {
  meta::TopicRecord rec;
  rec.id = 3;
  rec.config.partitions = 2;
  rec.config.quota = {.bytes_per_sec = 1000, .records_per_sec = 20};
  auto decoded = meta::DecodeTopicRecord(meta::EncodeTopicRecord(rec));
  ASSERT_TRUE(decoded.has_value());
  EXPECT_EQ(decoded->config.quota, rec.config.quota);

  rec.config.quota = {};
  const std::string plain = meta::EncodeTopicRecord(rec);
  EXPECT_EQ(plain.find("quota"), std::string::npos) << plain;
}

TEST(QuotaMetaTest, TopicRecordWithoutQuotaFieldsReadsAsUnlimited) {
  // A record as written by builds before quotas.
  auto decoded = meta::DecodeTopicRecord(
      R"({"v":1,"id":1,"partitions":1,"retention_ms":-1,"retention_bytes":-1,"created_ms":5})");
  ASSERT_TRUE(decoded.has_value());
  EXPECT_TRUE(decoded->config.quota.unlimited());
}

TEST(QuotaStoreTest, CreateTopicWithQuotaIsDescribed) {
  QuotaTempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->CreateTopic("t", {.partitions = 2, .quota = {.bytes_per_sec = 500}}).ok());
  auto info = store->DescribeTopic("t");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->config.quota, (Quota{.bytes_per_sec = 500, .records_per_sec = 0}));
}

TEST(QuotaStoreTest, CreateTopicWithNegativeQuotaIsInvalidArgument) {
  QuotaTempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->CreateTopic("t", {.quota = {.records_per_sec = -5}}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(QuotaStoreTest, AlterTopicQuotaChangesOnlyGivenFields) {
  QuotaTempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(
      store->CreateTopic("t", {.quota = {.bytes_per_sec = 100, .records_per_sec = 10}}).ok());
  auto q = store->AlterTopicQuota("t", {.records_per_sec = 0});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(*q, (Quota{.bytes_per_sec = 100, .records_per_sec = 0}));
  EXPECT_EQ(store->DescribeTopic("t")->config.quota, *q);
}

TEST(QuotaStoreTest, AlterTopicQuotaErrors) {
  QuotaTempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->AlterTopicQuota("missing", {.bytes_per_sec = 1}).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(store->CreateTopic("t", {}).ok());
  EXPECT_EQ(store->AlterTopicQuota("t", {.bytes_per_sec = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(QuotaStoreTest, ProducerQuotasAreMergedListedAndDeleted) {
  QuotaTempDir dir;
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  auto q = store->SetProducerQuota(9, {.bytes_per_sec = 4096});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(*q, (Quota{.bytes_per_sec = 4096, .records_per_sec = 0}));
  q = store->SetProducerQuota(9, {.records_per_sec = 50});
  ASSERT_TRUE(q.ok()) << q.status();
  EXPECT_EQ(*q, (Quota{.bytes_per_sec = 4096, .records_per_sec = 50}));
  ASSERT_TRUE(store->SetProducerQuota(kDefaultProducerQuotaId, {.records_per_sec = 7}).ok());
  ASSERT_TRUE(store->SetProducerQuota(300, {.bytes_per_sec = 1}).ok());

  auto list = store->ListProducerQuotas();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_THAT(*list, ElementsAre(ProducerQuota{0, {0, 7}}, ProducerQuota{9, {4096, 50}},
                                 ProducerQuota{300, {1, 0}}));

  EXPECT_TRUE(store->DeleteProducerQuota(9).ok());
  EXPECT_EQ(store->DeleteProducerQuota(9).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store->SetProducerQuota(-2, {.bytes_per_sec = 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store->SetProducerQuota(4, {.bytes_per_sec = -1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(*store->ListProducerQuotas(),
              ElementsAre(ProducerQuota{0, {0, 7}}, ProducerQuota{300, {1, 0}}));
}

TEST(QuotaStoreTest, QuotasSurviveReopen) {
  QuotaTempDir dir;
  {
    auto store = OpenStore(dir.path());
    ASSERT_NE(store, nullptr);
    ASSERT_TRUE(store->CreateTopic("a", {.quota = {.records_per_sec = 2000}}).ok());
    ASSERT_TRUE(store->CreateTopic("b", {}).ok());
    ASSERT_TRUE(store->AlterTopicQuota("b", {.bytes_per_sec = 1 << 20}).ok());
    ASSERT_TRUE(store->SetProducerQuota(5, {.bytes_per_sec = 10, .records_per_sec = 1}).ok());
    ASSERT_TRUE(store->SetProducerQuota(kDefaultProducerQuotaId, {.bytes_per_sec = 99}).ok());
  }
  auto store = OpenStore(dir.path());
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->DescribeTopic("a")->config.quota, (Quota{0, 2000}));
  EXPECT_EQ(store->DescribeTopic("b")->config.quota, (Quota{1 << 20, 0}));
  EXPECT_THAT(*store->ListProducerQuotas(),
              ElementsAre(ProducerQuota{0, {99, 0}}, ProducerQuota{5, {10, 1}}));
  // Altering after a reopen keeps the rest of the topic's configuration.
  ASSERT_TRUE(store->AlterTopicQuota("a", {.bytes_per_sec = 3}).ok());
  EXPECT_EQ(store->DescribeTopic("a")->config.partitions, 1);
}

}  // namespace
}  // namespace evlog::storage
