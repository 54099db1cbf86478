#include <atomic>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/log_store.h"

namespace evlog::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

class GroupOffsetsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() /
            absl::StrCat("evlog_group_test_", getpid(), "_", std::random_device()()))
               .string();
    Reopen();
    ASSERT_TRUE(store_->CreateTopic("t", {.partitions = 3}).ok());
    ASSERT_TRUE(store_->Append("t", 0, {{.value = "a"}, {.value = "b"}}).ok());
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    Options options;
    options.retention_check_interval = absl::ZeroDuration();
    auto s = LogStore::Open(dir_, options);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }
  std::string dir_;
  std::unique_ptr<LogStore> store_;
};

TEST_F(GroupOffsetsTest, CommitFetchAndSurviveRestart) {
  EXPECT_THAT(*store_->FetchOffsets("g"), IsEmpty());
  ASSERT_TRUE(store_->CommitOffsets("g", "t", {{0, 2}, {1, 0}}).ok());
  ASSERT_TRUE(store_->CommitOffsets("g", "t", {{0, 1}}).ok());  // moving back is allowed
  ASSERT_TRUE(store_->CommitOffsets("other", "t", {{2, 0}}).ok());
  Reopen();
  absl::StatusOr<std::vector<GroupOffset>> got = store_->FetchOffsets("g");
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->size(), 2u);
  EXPECT_EQ((*got)[0].partition, 0);
  EXPECT_EQ((*got)[0].offset, 1);
  EXPECT_GT((*got)[0].commit_time_ms, 0);
  EXPECT_EQ((*got)[1].partition, 1);
  EXPECT_EQ((*got)[1].offset, 0);
  EXPECT_THAT(store_->ListGroups(), ElementsAre("g", "other"));
}

TEST_F(GroupOffsetsTest, InvalidCommitsChangeNothing) {
  ASSERT_TRUE(store_->CommitOffsets("g", "t", {{0, 1}}).ok());
  EXPECT_EQ(store_->CommitOffsets("g", "t", {{0, 3}}).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store_->CommitOffsets("g", "t", {{0, 2}, {1, -1}}).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store_->CommitOffsets("g", "t", {{3, 0}}).code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(store_->CommitOffsets("g", "nope", {{0, 0}}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->CommitOffsets("bad name", "t", {{0, 0}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->CommitOffsets("g", "t", {}).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*store_->FetchOffsets("g"))[0].offset, 1);
}

TEST_F(GroupOffsetsTest, GroupStateAndDelete) {
  EXPECT_EQ(store_->GetGroupState("g").status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->PutGroupState("g", "gen=4").ok());
  ASSERT_TRUE(store_->CommitOffsets("g", "t", {{0, 2}}).ok());
  ASSERT_TRUE(store_->PutGroupState("g2", "x").ok());
  Reopen();
  EXPECT_EQ(*store_->GetGroupState("g"), "gen=4");
  EXPECT_THAT(store_->ListGroups(), ElementsAre("g", "g2"));
  ASSERT_TRUE(store_->DeleteGroup("g").ok());
  EXPECT_EQ(store_->DeleteGroup("g").code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(*store_->FetchOffsets("g"), IsEmpty());
  EXPECT_THAT(store_->ListGroups(), ElementsAre("g2"));
}

TEST_F(GroupOffsetsTest, DeletedTopicTakesItsOffsetsAlong) {
  ASSERT_TRUE(store_->CommitOffsets("g", "t", {{0, 2}}).ok());
  ASSERT_TRUE(store_->DeleteTopic("t").ok());
  ASSERT_TRUE(store_->CreateTopic("t", {.partitions = 3}).ok());
  EXPECT_THAT(*store_->FetchOffsets("g"), IsEmpty());
}

}  // namespace
}  // namespace evlog::storage
