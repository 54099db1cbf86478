#include "coordinator/group_coordinator.h"

#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evlog::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

std::map<std::string, int> Loads(const std::map<TopicPartition, std::string>& a) {
  std::map<std::string, int> load;
  for (const auto& [tp, m] : a) ++load[m];
  return load;
}

int Moved(const std::map<TopicPartition, std::string>& a,
          const std::map<TopicPartition, std::string>& b) {
  int moved = 0;
  for (const auto& [tp, m] : b) {
    auto it = a.find(tp);
    moved += it != a.end() && it->second != m;
  }
  return moved;
}

TEST(AssignPartitionsTest, BalancedAndSticky) {
  std::map<std::string, int32_t> parts = {{"t", 10}};
  auto one = AssignPartitions({{"a", {"t"}}}, parts, {});
  EXPECT_EQ(Loads(one)["a"], 10);
  auto two = AssignPartitions({{"a", {"t"}}, {"b", {"t"}}}, parts, one);
  EXPECT_EQ(Loads(two)["a"], 5);
  EXPECT_EQ(Loads(two)["b"], 5);
  EXPECT_EQ(Moved(one, two), 5);  // only what balance needs
  auto three = AssignPartitions({{"a", {"t"}}, {"b", {"t"}}, {"c", {"t"}}}, parts, two);
  for (const auto& [m, l] : Loads(three)) EXPECT_TRUE(l == 3 || l == 4) << m;
  EXPECT_EQ(Moved(two, three), 3);
  // b leaves: only b's partitions move.
  auto after = AssignPartitions({{"a", {"t"}}, {"c", {"t"}}}, parts, three);
  for (const auto& [tp, m] : three) {
    if (m != "b") {
      EXPECT_EQ(after.at(tp), m);
    }
  }
  EXPECT_EQ(Loads(after)["a"], 5);
}

TEST(AssignPartitionsTest, OnlySubscribersGetATopic) {
  auto a = AssignPartitions({{"a", {"x"}}, {"b", {"x", "y"}}}, {{"x", 2}, {"y", 3}}, {});
  EXPECT_EQ(a.at({"y", 0}), "b");
  EXPECT_EQ(a.at({"y", 2}), "b");
  EXPECT_EQ(Loads(a)["a"], 2);
  EXPECT_EQ(Loads(a)["b"], 3);
}

class GroupCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            absl::StrCat("evlog_coord_", getpid(), "_", std::random_device()()))
               .string();
    OpenStore();
    ASSERT_TRUE(store_->CreateTopic("t", {.partitions = 6}).ok());
    for (int p = 0; p < 6; ++p) {
      std::vector<storage::Record> recs(10);
      for (int i = 0; i < 10; ++i) recs[i].timestamp_ms = 1000 * (i + 1);
      ASSERT_TRUE(store_->Append("t", p, recs).ok());
    }
    coord_ = std::make_unique<GroupCoordinator>(store_.get(), [this] { return Now(); });
  }
  void TearDown() override {
    coord_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void OpenStore() {
    storage::Options o;
    o.retention_check_interval = absl::ZeroDuration();
    store_ = *storage::LogStore::Open(dir_, o);
  }
  void Restart() {
    coord_.reset();
    store_.reset();
    OpenStore();
    coord_ = std::make_unique<GroupCoordinator>(store_.get(), [this] { return Now(); });
  }
  absl::Time Now() {
    absl::MutexLock l(&clock_mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&clock_mu_);
    now_ += d;
  }
  MemberView Join(const std::string& member_id = "") {
    absl::StatusOr<MemberView> v = coord_->Join({.group = "g",
                                                 .member_id = member_id,
                                                 .client_id = "test",
                                                 .topics = {"t"},
                                                 .session_timeout = absl::Seconds(10)});
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *v : MemberView{};
  }

  std::string dir_;
  std::unique_ptr<storage::LogStore> store_;
  std::unique_ptr<GroupCoordinator> coord_;
  absl::Mutex clock_mu_;
  absl::Time now_ = absl::FromUnixSeconds(1'700'000'000);
};

TEST_F(GroupCoordinatorTest, MembersSharePartitionsAndGenerationsRise) {
  MemberView a = Join();
  EXPECT_THAT(a.assignment, SizeIs(6));
  EXPECT_EQ(a.assignment[0].offset, 0);  // earliest, nothing committed
  EXPECT_FALSE(a.assignment[0].committed);
  MemberView b = Join();
  EXPECT_GT(b.generation, a.generation);
  EXPECT_THAT(b.assignment, SizeIs(3));
  absl::StatusOr<MemberView> a2 = coord_->Heartbeat("g", a.member_id);
  ASSERT_TRUE(a2.ok());
  EXPECT_THAT(a2->assignment, SizeIs(3));
  EXPECT_EQ(a2->generation, b.generation);
}

TEST_F(GroupCoordinatorTest, OnlyTheOwnerMayCommit) {
  MemberView a = Join();
  MemberView b = Join();
  a = *coord_->Heartbeat("g", a.member_id);
  const TopicPartition mine = a.assignment[0].tp;
  const TopicPartition theirs = b.assignment[0].tp;
  EXPECT_TRUE(coord_->Commit("g", a.member_id, a.generation, "t", {{mine.partition, 4}}).ok());
  absl::Status s = coord_->Commit("g", a.member_id, a.generation, "t", {{theirs.partition, 4}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("does not own"));
  // A generation older than the ownership is stale.
  s = coord_->Commit("g", b.member_id, b.generation - 1, "t", {{theirs.partition, 4}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  // The committed offset is where the next owner starts.
  ASSERT_TRUE(coord_->Leave("g", a.member_id).ok());
  MemberView b2 = *coord_->Heartbeat("g", b.member_id);
  for (const PartitionStart& p : b2.assignment) {
    if (p.tp == mine) {
      EXPECT_TRUE(p.committed);
      EXPECT_EQ(p.offset, 4);
    }
  }
}

TEST_F(GroupCoordinatorTest, ExpiredMemberLosesPartitionsAndCannotCommit) {
  MemberView a = Join();
  MemberView b = Join();
  a = *coord_->Heartbeat("g", a.member_id);
  Advance(absl::Seconds(6));
  ASSERT_TRUE(coord_->Heartbeat("g", b.member_id).ok());
  Advance(absl::Seconds(6));  // a is 12 s silent; b 6 s
  coord_->ExpireMembers();
  absl::StatusOr<MemberView> b2 = coord_->Heartbeat("g", b.member_id);
  ASSERT_TRUE(b2.ok());
  EXPECT_THAT(b2->assignment, SizeIs(6));
  EXPECT_EQ(coord_->Heartbeat("g", a.member_id).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(coord_->Commit("g", a.member_id, a.generation, "t", {{0, 1}}).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(GroupCoordinatorTest, StateSurvivesRestart) {
  MemberView a = Join();
  ASSERT_TRUE(coord_->Commit("g", a.member_id, a.generation, "t", {{2, 7}}).ok());
  Restart();
  absl::StatusOr<MemberView> again = coord_->Heartbeat("g", a.member_id);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->generation, a.generation);
  MemberView b = Join();
  EXPECT_GT(b.generation, a.generation);
  absl::StatusOr<GroupDescription> d = coord_->Describe("g");
  ASSERT_TRUE(d.ok());
  EXPECT_THAT(d->members, SizeIs(2));
  for (const PartitionDescription& p : d->partitions) {
    if (p.tp.partition == 2) {
      EXPECT_EQ(p.committed, 7);
      EXPECT_EQ(p.lag, 3);
    } else {
      EXPECT_EQ(p.lag, 10);
    }
  }
}

TEST_F(GroupCoordinatorTest, ResetIsRefusedWithLiveMembersUnlessForced) {
  MemberView a = Join();
  auto r = coord_->ResetOffsets("g", "t", -1, {.kind = ResetSpec::kToLatest}, false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  r = coord_->ResetOffsets("g", "t", -1, {.kind = ResetSpec::kToLatest}, true);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, SizeIs(6));
  EXPECT_EQ((*r)[0].second, 10);
  EXPECT_EQ(coord_->Heartbeat("g", a.member_id).status().code(),
            absl::StatusCode::kFailedPrecondition);  // removed: it rejoins
  EXPECT_EQ(Join().assignment[0].offset, 10);
}

TEST_F(GroupCoordinatorTest, ResetKinds) {
  using K = ResetSpec::Kind;
  auto at = [&](K kind, int64_t value, int32_t partition = 1) {
    auto r = coord_->ResetOffsets("g", "t", partition, {.kind = kind, .value = value}, false);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? (*r)[0].second : -1;
  };
  EXPECT_EQ(at(K::kToOffset, 4), 4);
  EXPECT_EQ(at(K::kShiftBy, 3), 7);
  EXPECT_EQ(at(K::kShiftBy, -100), 0);
  EXPECT_EQ(at(K::kToLatest, 0), 10);
  EXPECT_EQ(at(K::kToEarliest, 0), 0);
  EXPECT_EQ(at(K::kToTime, 3500), 3);
  EXPECT_EQ(
      coord_->ResetOffsets("g", "t", 1, {.kind = K::kToOffset, .value = 11}, false).status().code(),
      absl::StatusCode::kOutOfRange);
  EXPECT_EQ(coord_->ResetOffsets("g", "t", 9, {}, false).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(coord_->ResetOffsets("g", "nope", 0, {}, false).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(GroupCoordinatorTest, ListAndDelete) {
  MemberView a = Join();
  EXPECT_THAT(coord_->ListGroups(), ::testing::ElementsAre("g"));
  EXPECT_EQ(coord_->DeleteGroup("g", false).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(coord_->Leave("g", a.member_id).ok());
  ASSERT_TRUE(coord_->DeleteGroup("g", false).ok());
  EXPECT_EQ(coord_->Describe("g").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(coord_->DeleteGroup("g", false).code(), absl::StatusCode::kNotFound);
}

TEST_F(GroupCoordinatorTest, JoinValidation) {
  EXPECT_EQ(coord_->Join({.group = "bad name", .topics = {"t"}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(coord_->Join({.group = "g", .topics = {}}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(coord_->Join({.group = "g", .topics = {"missing"}}).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(coord_->Join({.group = "g", .member_id = "ghost", .topics = {"t"}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(GroupCoordinatorTest, RejoinWithUnknownMemberCreatesNoGroup) {
  EXPECT_EQ(coord_->Join({.group = "never", .member_id = "ghost", .topics = {"t"}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(coord_->ListGroups(), ::testing::IsEmpty());
  EXPECT_EQ(coord_->Describe("never").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(GroupCoordinatorTest, CommitToMissingTopicOrPartitionIsNotAnOwnershipError) {
  MemberView a = Join();
  EXPECT_EQ(coord_->Commit("g", a.member_id, a.generation, "nope", {{0, 1}}).code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(coord_->Commit("g", a.member_id, a.generation, "t", {{6, 1}}).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(coord_->Commit("g", a.member_id, a.generation, "t", {{-1, 1}}).code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(coord_->Commit("g", a.member_id, a.generation, "t", {{0, 11}}).code(),
            absl::StatusCode::kOutOfRange);  // beyond the end offset
  EXPECT_EQ(coord_->Commit("g", a.member_id, a.generation, "t", {}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(GroupCoordinatorTest, FailedForcedResetKeepsMembersAndOffsets) {
  MemberView a = Join();
  ASSERT_TRUE(coord_->Commit("g", a.member_id, a.generation, "t", {{0, 5}}).ok());
  // Offset 11 is past partition ends (10): nothing may change, not even the membership.
  auto r = coord_->ResetOffsets("g", "t", -1, {.kind = ResetSpec::kToOffset, .value = 11}, true);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
  absl::StatusOr<MemberView> again = coord_->Heartbeat("g", a.member_id);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->generation, a.generation);
  EXPECT_EQ(again->assignment[0].offset, 5);
}

TEST_F(GroupCoordinatorTest, ShiftByAnAbsurdAmountIsClamped) {
  using K = ResetSpec::Kind;
  auto r = coord_->ResetOffsets("g", "t", 2, {.kind = K::kShiftBy, .value = INT64_MAX}, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].second, 10);
  r = coord_->ResetOffsets("g", "t", 2, {.kind = K::kShiftBy, .value = INT64_MIN}, false);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].second, 0);
}

}  // namespace
}  // namespace evlog::coordinator
