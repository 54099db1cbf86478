#include "client/consumer_internal.h"

#include <deque>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evlog::client::consumer_internal {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

AssignedPartition A(const std::string& topic, int32_t partition, int64_t generation,
                    int64_t start = 0) {
  return {.tp = {topic, partition}, .start_offset = start, .assigned_generation = generation};
}

TEST(DiffAssignmentTest, NewPartitionsStartAndMissingOnesStop) {
  const std::map<TopicPartition, int64_t> held = {{{"t", 0}, 1}, {{"t", 1}, 1}};
  AssignmentDiff d = DiffAssignment(held, {A("t", 1, 1), A("t", 2, 3, 7)});
  EXPECT_THAT(d.removed, ElementsAre(TopicPartition{"t", 0}));
  ASSERT_EQ(d.added.size(), 1u);
  EXPECT_EQ(d.added[0].tp, (TopicPartition{"t", 2}));
  EXPECT_EQ(d.added[0].start_offset, 7);
}

TEST(DiffAssignmentTest, UnchangedAssignmentChangesNothing) {
  const std::map<TopicPartition, int64_t> held = {{{"t", 0}, 2}, {{"u", 0}, 5}};
  AssignmentDiff d = DiffAssignment(held, {A("t", 0, 2, 99), A("u", 0, 5)});
  EXPECT_THAT(d.removed, IsEmpty());
  EXPECT_THAT(d.added, IsEmpty()) << "a kept partition's start offset is ignored";
}

TEST(DiffAssignmentTest, APartitionBackWithANewerGenerationRestarts) {
  // It was another member's in between: the local position is stale.
  const std::map<TopicPartition, int64_t> held = {{{"t", 0}, 2}};
  AssignmentDiff d = DiffAssignment(held, {A("t", 0, 6, 40)});
  EXPECT_THAT(d.removed, ElementsAre(TopicPartition{"t", 0}));
  ASSERT_EQ(d.added.size(), 1u);
  EXPECT_EQ(d.added[0].start_offset, 40);
}

TEST(DiffAssignmentTest, EmptyAssignmentStopsEverything) {
  const std::map<TopicPartition, int64_t> held = {{{"t", 0}, 1}, {{"t", 3}, 1}};
  AssignmentDiff d = DiffAssignment(held, {});
  EXPECT_THAT(d.removed, ElementsAre(TopicPartition{"t", 0}, TopicPartition{"t", 3}));
  EXPECT_THAT(d.added, IsEmpty());
}

TEST(BatchCommitsTest, OneCallPerMemberGenerationAndTopic) {
  std::vector<PendingCommit> pending;
  auto add = [&pending](std::string topic, int32_t partition, std::string member,
                        int64_t generation, int64_t offset) {
    PendingCommit p;
    p.tp.topic = std::move(topic);
    p.tp.partition = partition;
    p.member_id = std::move(member);
    p.generation = generation;
    p.offset = offset;
    pending.push_back(std::move(p));
  };
  add("t", 2, "m", 5, 20);
  add("t", 0, "m", 5, 10);
  add("u", 0, "m", 5, 1);
  add("t", 1, "m", 4, 3);    // a revoked position from an older generation
  add("t", 3, "old", 2, 9);  // from a membership that was lost
  std::vector<CommitBatch> b = BatchCommits(pending);
  ASSERT_EQ(b.size(), 4u);
  EXPECT_EQ(b[0].member_id, "m");
  EXPECT_EQ(b[0].generation, 4);
  EXPECT_THAT(b[0].offsets, ElementsAre(std::make_pair(1, int64_t{3})));
  EXPECT_EQ(b[1].generation, 5);
  EXPECT_EQ(b[1].topic, "t");
  EXPECT_THAT(b[1].offsets,
              ElementsAre(std::make_pair(0, int64_t{10}), std::make_pair(2, int64_t{20})));
  EXPECT_EQ(b[2].topic, "u");
  EXPECT_EQ(b[3].member_id, "old");
  EXPECT_THAT(BatchCommits({}), IsEmpty());
}

RecordQueue Queue(int32_t partition, int n) {
  RecordQueue q;
  for (int i = 0; i < n; ++i) q.push_back({.topic = "t", .partition = partition, .offset = i});
  return q;
}

std::vector<std::string> Ids(const std::vector<ConsumedRecord>& rs) {
  std::vector<std::string> out;
  for (const auto& r : rs)
    out.push_back(std::to_string(r.partition) + "@" + std::to_string(r.offset));
  return out;
}

TEST(TakeFairlyTest, SharesTheLimitAmongPartitionsKeepingEachInOrder) {
  auto a = Queue(0, 10), b = Queue(1, 10), c = Queue(2, 1);
  std::vector<ConsumedRecord> got = TakeFairly({&a, &b, &c}, 0, 7);
  // 7 / 3 = 2 per partition per round: 0@0 0@1 1@0 1@1 2@0, then 7-5 = 2 left for 2 queues.
  EXPECT_THAT(Ids(got), ElementsAre("0@0", "0@1", "1@0", "1@1", "2@0", "0@2", "1@2"));
  EXPECT_EQ(a.size(), 7u);
  EXPECT_EQ(b.size(), 7u);
  EXPECT_TRUE(c.empty());
}

TEST(TakeFairlyTest, RotatesTheFirstPartitionAndStopsWhenEmpty) {
  auto a = Queue(0, 1), b = Queue(1, 1);
  EXPECT_THAT(Ids(TakeFairly({&a, &b}, 1, 1)), ElementsAre("1@0"));
  EXPECT_THAT(Ids(TakeFairly({&a, &b}, 1, 10)), ElementsAre("0@0"));
  EXPECT_THAT(TakeFairly({&a, &b}, 0, 10), IsEmpty());
  EXPECT_THAT(TakeFairly({}, 0, 10), IsEmpty());
}

TEST(ValidateOptionsTest, AcceptsDefaultsAndNamesTheBadOption) {
  ConsumerOptions o;
  o.group = "g";
  o.topics = {"t"};
  EXPECT_TRUE(ValidateOptions(o).ok());
  EXPECT_EQ(HeartbeatInterval(o), absl::Seconds(10) / 3);
  o.heartbeat_interval = absl::Seconds(1);
  EXPECT_EQ(HeartbeatInterval(o), absl::Seconds(1));
  o.heartbeat_interval = absl::ZeroDuration();
  struct Case {
    std::function<void(ConsumerOptions&)> change;
    std::string needle;
  };
  const std::vector<Case> cases = {
      {[](ConsumerOptions& c) { c.group = ""; }, "group"},
      {[](ConsumerOptions& c) { c.group = "a b"; }, "group"},
      {[](ConsumerOptions& c) { c.topics.clear(); }, "topic"},
      {[](ConsumerOptions& c) { c.topics = {"bad/name"}; }, "topic"},
      {[](ConsumerOptions& c) { c.session_timeout = absl::Milliseconds(50); }, "session"},
      {[](ConsumerOptions& c) { c.session_timeout = absl::Minutes(11); }, "session"},
      {[](ConsumerOptions& c) { c.heartbeat_interval = absl::Seconds(10); }, "heartbeat"},
      {[](ConsumerOptions& c) { c.call_timeout = absl::ZeroDuration(); }, "call timeout"},
      {[](ConsumerOptions& c) { c.max_buffered_bytes_per_partition = 0; }, "buffered"},
  };
  for (const Case& c : cases) {
    ConsumerOptions bad = o;
    c.change(bad);
    absl::Status s = ValidateOptions(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.needle;
    EXPECT_THAT(std::string(s.message()), ::testing::HasSubstr(c.needle));
  }
}

TEST(FormatPartitionsTest, JoinsTopicColonPartition) {
  EXPECT_EQ(FormatPartitions({{"t", 0}, {"u", 3}}), "t:0, u:3");
  EXPECT_EQ(FormatPartitions({}), "");
}

}  // namespace
}  // namespace evlog::client::consumer_internal
