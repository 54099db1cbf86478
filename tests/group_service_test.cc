// evlog.v1.GroupService end to end, through the raw generated stubs against real evlogd
// processes: balanced sticky assignment over many partitions, fenced commits (non-owner,
// stale generation, zombie), session expiry, durability across SIGKILL, offset resets,
// lag in DescribeGroup, ListGroups/DeleteGroup, and request validation.
#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "evlog/v1/groups.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using Assignment = google::protobuf::RepeatedPtrField<v1::PartitionAssignment>;
using PartitionSet = std::set<std::pair<std::string, int32_t>>;

constexpr int32_t kLongSessionMs = 10000;

PartitionSet Partitions(const Assignment& assignment) {
  PartitionSet out;
  for (const v1::PartitionAssignment& a : assignment) out.emplace(a.topic(), a.partition());
  return out;
}

bool Includes(const PartitionSet& big, const PartitionSet& small) {
  return std::includes(big.begin(), big.end(), small.begin(), small.end());
}

const v1::PartitionAssignment* Find(const Assignment& assignment, int32_t partition) {
  for (const v1::PartitionAssignment& a : assignment) {
    if (a.partition() == partition) return &a;
  }
  return nullptr;
}

// Each test runs its own evlogd (ctest runs each test in its own process anyway).
class GroupServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    Connect();
  }

  void Connect() {
    stubs_ = std::make_unique<EvlogStubs>(server_->address());
    groups_ = v1::GroupService::NewStub(stubs_->channel);
  }

  void MustCreateTopic(const std::string& name, int partitions) {
    grpc::Status s = CreateTopic(*stubs_, name, partitions);
    ASSERT_TRUE(s.ok()) << Describe(s);
  }

  // Appends `count` records to a partition; with first_timestamp_ms > 0, record i has the
  // timestamp first_timestamp_ms + 1000 * i.
  void MustProduce(const std::string& topic, int partition, int count,
                   int64_t first_timestamp_ms = 0) {
    std::vector<std::string> values;
    for (int i = 0; i < count; ++i) values.push_back(absl::StrCat("v", i));
    v1::ProduceRequest request = MakeBatch(topic, partition, values);
    if (first_timestamp_ms > 0) {
      for (int i = 0; i < count; ++i) {
        request.mutable_records(i)->set_timestamp_ms(first_timestamp_ms + 1000 * i);
      }
    }
    ProduceOutcome outcome = ProduceOne(*stubs_, request);
    ASSERT_TRUE(outcome.status.ok()) << Describe(outcome.status);
  }

  grpc::Status Join(const v1::JoinGroupRequest& request, v1::JoinGroupResponse* response) {
    return groups_->JoinGroup(Deadline().get(), request, response);
  }

  static v1::JoinGroupRequest JoinRequest(const std::string& group,
                                          const std::vector<std::string>& topics,
                                          int32_t session_timeout_ms = kLongSessionMs,
                                          const std::string& member_id = "") {
    v1::JoinGroupRequest request;
    request.set_group(group);
    request.set_member_id(member_id);
    request.set_client_id("group-service-test");
    for (const std::string& t : topics) request.add_topics(t);
    request.set_session_timeout_ms(session_timeout_ms);
    return request;
  }

  // Joins as a new member; a failure fails the test (and returns an empty response).
  v1::JoinGroupResponse MustJoin(const std::string& group, const std::vector<std::string>& topics,
                                 int32_t session_timeout_ms = kLongSessionMs) {
    v1::JoinGroupResponse response;
    grpc::Status s = Join(JoinRequest(group, topics, session_timeout_ms), &response);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return response;
  }

  grpc::Status Heartbeat(const std::string& group, const std::string& member_id,
                         v1::HeartbeatResponse* response) {
    v1::HeartbeatRequest request;
    request.set_group(group);
    request.set_member_id(member_id);
    return groups_->Heartbeat(Deadline().get(), request, response);
  }

  v1::HeartbeatResponse MustHeartbeat(const std::string& group, const std::string& member_id) {
    v1::HeartbeatResponse response;
    grpc::Status s = Heartbeat(group, member_id, &response);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return response;
  }

  grpc::Status Leave(const std::string& group, const std::string& member_id) {
    v1::LeaveGroupRequest request;
    request.set_group(group);
    request.set_member_id(member_id);
    v1::LeaveGroupResponse response;
    return groups_->LeaveGroup(Deadline().get(), request, &response);
  }

  grpc::Status Commit(const std::string& group, const std::string& member_id, int64_t generation,
                      const std::string& topic,
                      const std::vector<std::pair<int32_t, int64_t>>& offsets) {
    v1::CommitOffsetsRequest request;
    request.set_group(group);
    request.set_member_id(member_id);
    request.set_generation(generation);
    request.set_topic(topic);
    for (const auto& [partition, offset] : offsets) {
      v1::PartitionOffsetCommit* o = request.add_offsets();
      o->set_partition(partition);
      o->set_offset(offset);
    }
    v1::CommitOffsetsResponse response;
    return groups_->CommitOffsets(Deadline().get(), request, &response);
  }

  grpc::Status DescribeGroup(const std::string& group, v1::DescribeGroupResponse* response) {
    v1::DescribeGroupRequest request;
    request.set_group(group);
    return groups_->DescribeGroup(Deadline().get(), request, response);
  }

  v1::DescribeGroupResponse MustDescribe(const std::string& group) {
    v1::DescribeGroupResponse response;
    grpc::Status s = DescribeGroup(group, &response);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return response;
  }

  // partition -> committed offset, from DescribeGroup (partitions with a commit only).
  std::map<int32_t, int64_t> Committed(const std::string& group, const std::string& topic) {
    std::map<int32_t, int64_t> out;
    const v1::DescribeGroupResponse d = MustDescribe(group);
    for (const v1::GroupPartition& p : d.partitions()) {
      if (p.topic() == topic && p.committed_offset() >= 0)
        out[p.partition()] = p.committed_offset();
    }
    return out;
  }

  grpc::Status Reset(const v1::ResetOffsetsRequest& request, v1::ResetOffsetsResponse* response) {
    return groups_->ResetOffsets(Deadline().get(), request, response);
  }

  static v1::ResetOffsetsRequest ResetRequest(const std::string& group, const std::string& topic,
                                              int32_t partition = -1, bool force = false) {
    v1::ResetOffsetsRequest request;
    request.set_group(group);
    request.set_topic(topic);
    if (partition >= 0) request.set_partition(partition);
    request.set_force(force);
    return request;
  }

  // The offsets a successful reset set, partition -> offset; {} (and a test failure) if not.
  std::map<int32_t, int64_t> MustReset(const v1::ResetOffsetsRequest& request) {
    v1::ResetOffsetsResponse response;
    grpc::Status s = Reset(request, &response);
    EXPECT_TRUE(s.ok()) << Describe(s) << " for " << request.ShortDebugString();
    std::map<int32_t, int64_t> out;
    for (const v1::PartitionOffsetCommit& o : response.offsets()) out[o.partition()] = o.offset();
    return out;
  }

  std::vector<std::string> ListGroups() {
    v1::ListGroupsResponse response;
    grpc::Status s = groups_->ListGroups(Deadline().get(), v1::ListGroupsRequest(), &response);
    EXPECT_TRUE(s.ok()) << Describe(s);
    return std::vector<std::string>(response.groups().begin(), response.groups().end());
  }

  grpc::Status DeleteGroup(const std::string& group, bool force) {
    v1::DeleteGroupRequest request;
    request.set_group(group);
    request.set_force(force);
    v1::DeleteGroupResponse response;
    return groups_->DeleteGroup(Deadline().get(), request, &response);
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<EvlogStubs> stubs_;
  std::unique_ptr<v1::GroupService::Stub> groups_;
};

TEST_F(GroupServiceTest, AssignmentIsBalancedAndStickyAsMembersComeAndGo) {
  constexpr int kPartitions = 24;
  MustCreateTopic("orders", kPartitions);
  v1::JoinGroupResponse a = MustJoin("g", {"orders"});
  ASSERT_EQ(a.assignment_size(), kPartitions);
  for (const v1::PartitionAssignment& p : a.assignment()) {
    EXPECT_EQ(p.start_offset(), 0);  // earliest, nothing committed
    EXPECT_FALSE(p.committed());
    EXPECT_EQ(p.assigned_generation(), a.generation());
  }

  v1::JoinGroupResponse b = MustJoin("g", {"orders"});
  EXPECT_GT(b.generation(), a.generation());
  EXPECT_EQ(b.assignment_size(), kPartitions / 2);
  v1::HeartbeatResponse a2 = MustHeartbeat("g", a.member_id());
  EXPECT_EQ(a2.generation(), b.generation());
  EXPECT_EQ(a2.assignment_size(), kPartitions / 2);
  EXPECT_TRUE(Includes(Partitions(a.assignment()), Partitions(a2.assignment())))
      << "a only gives partitions away when b joins";

  v1::JoinGroupResponse c = MustJoin("g", {"orders"});
  v1::HeartbeatResponse a3 = MustHeartbeat("g", a.member_id());
  v1::HeartbeatResponse b3 = MustHeartbeat("g", b.member_id());
  EXPECT_EQ(a3.generation(), c.generation());
  EXPECT_EQ(b3.generation(), c.generation());
  for (const Assignment* part : {&a3.assignment(), &b3.assignment(), &c.assignment()}) {
    EXPECT_EQ(part->size(), kPartitions / 3);
  }
  // Sticky: a and b each kept what they had except what c needed.
  EXPECT_TRUE(Includes(Partitions(a2.assignment()), Partitions(a3.assignment())));
  EXPECT_TRUE(Includes(Partitions(b.assignment()), Partitions(b3.assignment())));
  PartitionSet all;
  for (const Assignment* part : {&a3.assignment(), &b3.assignment(), &c.assignment()}) {
    for (const auto& tp : Partitions(*part)) EXPECT_TRUE(all.insert(tp).second) << tp.second;
  }
  EXPECT_THAT(all, SizeIs(kPartitions)) << "every partition has exactly one owner";

  // DescribeGroup agrees.
  v1::DescribeGroupResponse d = MustDescribe("g");
  EXPECT_EQ(d.generation(), c.generation());
  ASSERT_EQ(d.members_size(), 3);
  for (const v1::GroupMember& m : d.members()) EXPECT_EQ(m.assignment_size(), 8);
  ASSERT_EQ(d.partitions_size(), kPartitions);
  std::map<std::string, PartitionSet> owned;
  for (const v1::GroupPartition& p : d.partitions())
    owned[p.owner()].emplace(p.topic(), p.partition());
  EXPECT_EQ(owned[c.member_id()], Partitions(c.assignment()));

  // c leaves: its partitions go to a and b, who keep theirs.
  ASSERT_TRUE(Leave("g", c.member_id()).ok());
  v1::HeartbeatResponse a4 = MustHeartbeat("g", a.member_id());
  v1::HeartbeatResponse b4 = MustHeartbeat("g", b.member_id());
  EXPECT_GT(a4.generation(), c.generation());
  EXPECT_EQ(a4.assignment_size(), kPartitions / 2);
  EXPECT_EQ(b4.assignment_size(), kPartitions / 2);
  EXPECT_TRUE(Includes(Partitions(a4.assignment()), Partitions(a3.assignment())));
  EXPECT_TRUE(Includes(Partitions(b4.assignment()), Partitions(b3.assignment())));
}

TEST_F(GroupServiceTest, ConcurrentJoinsConvergeToOneBalancedAssignment) {
  constexpr int kPartitions = 64;
  constexpr int kMembers = 8;
  MustCreateTopic("events", kPartitions);
  std::vector<std::string> ids(kMembers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kMembers; ++i) {
    threads.emplace_back([&, i] {
      // Stubs are thread-safe; each thread makes its own calls.
      v1::JoinGroupResponse response;
      grpc::Status s = Join(JoinRequest("crowd", {"events"}), &response);
      EXPECT_TRUE(s.ok()) << Describe(s);
      ids[i] = response.member_id();
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<int64_t> generations;
  PartitionSet all;
  for (const std::string& id : ids) {
    ASSERT_FALSE(id.empty());
    v1::HeartbeatResponse hb = MustHeartbeat("crowd", id);
    generations.insert(hb.generation());
    EXPECT_EQ(hb.assignment_size(), kPartitions / kMembers) << id;
    for (const auto& tp : Partitions(hb.assignment())) EXPECT_TRUE(all.insert(tp).second);
  }
  EXPECT_THAT(generations, SizeIs(1)) << "nothing changed between the heartbeats";
  EXPECT_THAT(all, SizeIs(kPartitions));
  EXPECT_EQ(MustDescribe("crowd").members_size(), kMembers);
}

TEST_F(GroupServiceTest, CommitsFromNonOwnersStaleGenerationsAndZombiesAreRejected) {
  MustCreateTopic("fence", 4);
  for (int p = 0; p < 4; ++p) MustProduce("fence", p, 10);
  v1::JoinGroupResponse a = MustJoin("g", {"fence"});
  const int64_t gen1 = a.generation();
  v1::JoinGroupResponse b = MustJoin("g", {"fence"});
  const int64_t gen2 = b.generation();
  v1::HeartbeatResponse a2 = MustHeartbeat("g", a.member_id());
  ASSERT_EQ(a2.assignment_size(), 2);
  ASSERT_EQ(b.assignment_size(), 2);
  const int32_t pa = a2.assignment(0).partition();
  const int32_t pb = b.assignment(0).partition();

  // Not the owner.
  grpc::Status s = Commit("g", a.member_id(), gen2, "fence", {{pb, 5}});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  // All or nothing: one foreign partition fails the whole commit.
  s = Commit("g", a.member_id(), gen2, "fence", {{pa, 9}, {pb, 5}});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  // a kept pa since gen1, so its gen1 commits still count (members whose partitions did not
  // move keep working through a rebalance).
  EXPECT_EQ(Find(a2.assignment(), pa)->assigned_generation(), gen1);
  s = Commit("g", a.member_id(), gen1, "fence", {{pa, 3}});
  EXPECT_TRUE(s.ok()) << Describe(s);

  // b leaves; pb comes back to a in a new generation.
  ASSERT_TRUE(Leave("g", b.member_id()).ok());
  v1::HeartbeatResponse a3 = MustHeartbeat("g", a.member_id());
  ASSERT_EQ(a3.assignment_size(), 4);
  const int64_t gen3 = a3.generation();
  EXPECT_GT(gen3, gen2);
  ASSERT_NE(Find(a3.assignment(), pb), nullptr);
  EXPECT_EQ(Find(a3.assignment(), pb)->assigned_generation(), gen3);
  // A commit from a generation older than a's ownership of pb is stale.
  s = Commit("g", a.member_id(), gen2, "fence", {{pb, 5}});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  // b is a zombie now.
  s = Commit("g", b.member_id(), gen2, "fence", {{pb, 5}});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  s = Commit("g", a.member_id(), gen3, "fence", {{pb, 6}});
  EXPECT_TRUE(s.ok()) << Describe(s);

  // Only the accepted commits moved the group's offsets.
  EXPECT_EQ(Committed("g", "fence"), (std::map<int32_t, int64_t>{{pa, 3}, {pb, 6}}));
}

TEST_F(GroupServiceTest, SilentMemberLosesItsPartitionsAfterItsSessionTimeout) {
  constexpr absl::Duration kSession = absl::Seconds(1);
  MustCreateTopic("sessions", 6);
  v1::JoinGroupResponse steady = MustJoin("g", {"sessions"});
  // The silent member's only call is its Join, which already tells it its partitions.
  const absl::Time last_contact = absl::Now();
  v1::JoinGroupResponse silent =
      MustJoin("g", {"sessions"}, static_cast<int32_t>(absl::ToInt64Milliseconds(kSession)));
  ASSERT_EQ(silent.assignment_size(), 3);

  // The steady member heartbeats; the silent one does not. Its partitions come over once its
  // session has run out, and not before.
  v1::HeartbeatResponse hb;
  ASSERT_TRUE(WaitFor(
      [&] {
        hb = MustHeartbeat("g", steady.member_id());
        return hb.assignment_size() == 6;
      },
      absl::Seconds(20)))
      << "the silent member was never expired; log:\n"
      << server_->LogTail();
  EXPECT_GE(absl::Now() - last_contact, kSession);
  EXPECT_GT(hb.generation(), silent.generation());

  v1::HeartbeatResponse ignored;
  grpc::Status s = Heartbeat("g", silent.member_id(), &ignored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  s = Commit("g", silent.member_id(), silent.generation(), "sessions",
             {{silent.assignment(0).partition(), 0}});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  v1::JoinGroupResponse rejoined;
  s = Join(JoinRequest("g", {"sessions"}, kLongSessionMs, silent.member_id()), &rejoined);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  v1::DescribeGroupResponse d = MustDescribe("g");
  ASSERT_EQ(d.members_size(), 1);
  EXPECT_EQ(d.members(0).member_id(), steady.member_id());
  // Joining afresh works and rebalances.
  EXPECT_EQ(MustJoin("g", {"sessions"}).assignment_size(), 3);
}

TEST_F(GroupServiceTest, OffsetsAndGroupStateSurviveKill9) {
  constexpr int kPartitions = 4;
  MustCreateTopic("durable", kPartitions);
  for (int p = 0; p < kPartitions; ++p) MustProduce("durable", p, 20);
  v1::JoinGroupResponse a = MustJoin("g", {"durable"});
  v1::JoinGroupResponse b = MustJoin("g", {"durable"});
  v1::HeartbeatResponse a_view = MustHeartbeat("g", a.member_id());
  const int64_t generation = b.generation();
  std::map<int32_t, int64_t> committed;
  for (const auto& [id, part] : {std::pair{a.member_id(), &a_view.assignment()},
                                 std::pair{b.member_id(), &b.assignment()}}) {
    for (const v1::PartitionAssignment& p : *part) {
      const int64_t offset = 5 + 3 * p.partition();
      grpc::Status s = Commit("g", id, generation, "durable", {{p.partition(), offset}});
      ASSERT_TRUE(s.ok()) << Describe(s);
      committed[p.partition()] = offset;
    }
  }
  ASSERT_THAT(committed, SizeIs(kPartitions));

  server_->Kill();
  ASSERT_TRUE(server_->Restart().ok());
  Connect();

  v1::DescribeGroupResponse d = MustDescribe("g");
  EXPECT_EQ(d.generation(), generation);
  EXPECT_EQ(d.members_size(), 2);
  ASSERT_EQ(d.partitions_size(), kPartitions);
  for (const v1::GroupPartition& p : d.partitions()) {
    EXPECT_EQ(p.committed_offset(), committed[p.partition()]) << p.partition();
    EXPECT_EQ(p.end_offset(), 20);
    EXPECT_EQ(p.lag(), 20 - committed[p.partition()]);
    EXPECT_FALSE(p.owner().empty());
  }
  // The members are still known, keep their partitions and start at their commits.
  v1::HeartbeatResponse a_after = MustHeartbeat("g", a.member_id());
  v1::HeartbeatResponse b_after = MustHeartbeat("g", b.member_id());
  EXPECT_EQ(a_after.generation(), generation);
  EXPECT_EQ(Partitions(a_after.assignment()), Partitions(a_view.assignment()));
  EXPECT_EQ(Partitions(b_after.assignment()), Partitions(b.assignment()));
  for (const Assignment* part : {&a_after.assignment(), &b_after.assignment()}) {
    for (const v1::PartitionAssignment& p : *part) {
      EXPECT_TRUE(p.committed());
      EXPECT_EQ(p.start_offset(), committed[p.partition()]);
    }
  }
  // Generations keep rising after the restart; fencing still holds.
  v1::JoinGroupResponse c = MustJoin("g", {"durable"});
  EXPECT_GT(c.generation(), generation);
  grpc::Status s =
      Commit("g", a.member_id(), generation, "durable", {{c.assignment(0).partition(), 1}});
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
}

TEST_F(GroupServiceTest, ResetOffsetsByOffsetTimeEarliestLatestAndShift) {
  constexpr int kPartitions = 3;
  MustCreateTopic("replay", kPartitions);
  // Ten records per partition with timestamps 1000, 2000, ..., 10000.
  for (int p = 0; p < kPartitions; ++p) MustProduce("replay", p, 10, 1000);

  // A live member blocks a reset unless forced; a refused reset changes nothing.
  v1::JoinGroupResponse live = MustJoin("g", {"replay"});
  v1::ResetOffsetsRequest latest = ResetRequest("g", "replay");
  latest.set_to_latest(true);
  v1::ResetOffsetsResponse response;
  grpc::Status s = Reset(latest, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  v1::ResetOffsetsRequest too_far = ResetRequest("g", "replay", -1, /*force=*/true);
  too_far.set_to_offset(11);
  s = Reset(too_far, &response);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << Describe(s);
  EXPECT_EQ(MustHeartbeat("g", live.member_id()).generation(), live.generation());
  EXPECT_THAT(Committed("g", "replay"), IsEmpty());

  latest.set_force(true);
  EXPECT_EQ(MustReset(latest), (std::map<int32_t, int64_t>{{0, 10}, {1, 10}, {2, 10}}));
  v1::HeartbeatResponse ignored;
  s = Heartbeat("g", live.member_id(), &ignored);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << "a forced reset removes live members; they rejoin";

  v1::ResetOffsetsRequest r = ResetRequest("g", "replay", 1);
  r.set_to_offset(4);
  EXPECT_EQ(MustReset(r), (std::map<int32_t, int64_t>{{1, 4}}));
  r.set_shift_by(3);
  EXPECT_EQ(MustReset(r), (std::map<int32_t, int64_t>{{1, 7}}));
  r.set_shift_by(-100);  // clamped to the start offset
  EXPECT_EQ(MustReset(r), (std::map<int32_t, int64_t>{{1, 0}}));
  r = ResetRequest("g", "replay");
  r.set_to_earliest(true);
  EXPECT_EQ(MustReset(r), (std::map<int32_t, int64_t>{{0, 0}, {1, 0}, {2, 0}}));
  r.set_shift_by(2);
  EXPECT_EQ(MustReset(r), (std::map<int32_t, int64_t>{{0, 2}, {1, 2}, {2, 2}}));
  r.set_to_timestamp_ms(3500);  // the first record at or after 3.5 s is offset 3
  EXPECT_EQ(MustReset(r), (std::map<int32_t, int64_t>{{0, 3}, {1, 3}, {2, 3}}));
  r.set_to_timestamp_ms(99'000);  // after every record: the end offset
  EXPECT_EQ(MustReset(r), (std::map<int32_t, int64_t>{{0, 10}, {1, 10}, {2, 10}}));
  r.set_to_timestamp_ms(3500);
  MustReset(r);
  r = ResetRequest("g", "replay", 2);
  r.set_to_latest(true);
  EXPECT_EQ(MustReset(r), (std::map<int32_t, int64_t>{{2, 10}}));
  EXPECT_EQ(Committed("g", "replay"), (std::map<int32_t, int64_t>{{0, 3}, {1, 3}, {2, 10}}));

  // Refused targets, each with the code groups.proto names.
  struct Bad {
    v1::ResetOffsetsRequest request;
    grpc::StatusCode code;
  };
  std::vector<Bad> bad;
  bad.push_back({ResetRequest("g", "replay"), grpc::StatusCode::INVALID_ARGUMENT});  // no target
  bad.push_back({ResetRequest("g", "replay"), grpc::StatusCode::INVALID_ARGUMENT});
  bad.back().request.set_to_earliest(false);
  bad.push_back({ResetRequest("g", "replay"), grpc::StatusCode::INVALID_ARGUMENT});
  bad.back().request.set_to_timestamp_ms(-1);
  bad.push_back({ResetRequest("g", "replay"), grpc::StatusCode::INVALID_ARGUMENT});
  bad.back().request.set_partition(-2);
  bad.back().request.set_to_latest(true);
  bad.push_back({ResetRequest("g", "replay", 9), grpc::StatusCode::OUT_OF_RANGE});
  bad.back().request.set_to_latest(true);
  bad.push_back({ResetRequest("g", "replay", 0), grpc::StatusCode::OUT_OF_RANGE});
  bad.back().request.set_to_offset(-1);
  bad.push_back({ResetRequest("g", "missing"), grpc::StatusCode::NOT_FOUND});
  bad.back().request.set_to_latest(true);
  bad.push_back({ResetRequest("bad group", "replay"), grpc::StatusCode::INVALID_ARGUMENT});
  bad.back().request.set_to_latest(true);
  for (const Bad& b : bad) {
    s = Reset(b.request, &response);
    EXPECT_EQ(s.error_code(), b.code) << b.request.ShortDebugString() << ": " << Describe(s);
  }
  EXPECT_EQ(Committed("g", "replay"), (std::map<int32_t, int64_t>{{0, 3}, {1, 3}, {2, 10}}));

  // A member joining now starts where the resets put the group.
  v1::JoinGroupResponse next = MustJoin("g", {"replay"});
  ASSERT_EQ(next.assignment_size(), kPartitions);
  for (const v1::PartitionAssignment& p : next.assignment()) {
    EXPECT_TRUE(p.committed());
    EXPECT_EQ(p.start_offset(), p.partition() == 2 ? 10 : 3) << p.partition();
  }
}

TEST_F(GroupServiceTest, DescribeGroupReportsExactLagPerPartition) {
  constexpr int kPartitions = 5;
  MustCreateTopic("lag", kPartitions);
  std::map<int32_t, int64_t> produced;
  for (int p = 0; p < kPartitions; ++p) {
    produced[p] = 7 + 3 * p;
    MustProduce("lag", p, 4);  // two batches per partition
    MustProduce("lag", p, static_cast<int>(produced[p]) - 4);
  }
  const int64_t before_join_ms = absl::ToUnixMillis(absl::Now());
  v1::JoinGroupResponse m = MustJoin("lagging", {"lag"});
  const int64_t before_commit_ms = absl::ToUnixMillis(absl::Now());
  std::map<int32_t, int64_t> consumed;  // partition 4 consumes (and commits) nothing
  for (int p = 0; p < kPartitions - 1; ++p) {
    consumed[p] = 2 * p;
    grpc::Status s = Commit("lagging", m.member_id(), m.generation(), "lag", {{p, consumed[p]}});
    ASSERT_TRUE(s.ok()) << Describe(s);
  }
  const int64_t after_commit_ms = absl::ToUnixMillis(absl::Now());

  v1::DescribeGroupResponse d = MustDescribe("lagging");
  EXPECT_EQ(d.group(), "lagging");
  EXPECT_EQ(d.generation(), m.generation());
  EXPECT_EQ(d.auto_offset_reset(), v1::AUTO_OFFSET_RESET_EARLIEST);
  ASSERT_EQ(d.members_size(), 1);
  EXPECT_EQ(d.members(0).member_id(), m.member_id());
  EXPECT_EQ(d.members(0).client_id(), "group-service-test");
  EXPECT_THAT(d.members(0).topics(), ElementsAre("lag"));
  EXPECT_EQ(d.members(0).assignment_size(), kPartitions);
  EXPECT_GE(d.members(0).last_heartbeat_ms(), before_join_ms);
  EXPECT_LE(d.members(0).last_heartbeat_ms(), after_commit_ms);
  ASSERT_EQ(d.partitions_size(), kPartitions);
  for (const v1::GroupPartition& p : d.partitions()) {
    SCOPED_TRACE(::testing::Message() << "partition " << p.partition());
    EXPECT_EQ(p.topic(), "lag");
    EXPECT_EQ(p.owner(), m.member_id());
    EXPECT_EQ(p.start_offset(), 0);
    EXPECT_EQ(p.end_offset(), produced[p.partition()]);
    if (consumed.contains(p.partition())) {
      EXPECT_EQ(p.committed_offset(), consumed[p.partition()]);
      EXPECT_EQ(p.lag(), produced[p.partition()] - consumed[p.partition()]);
      EXPECT_GE(p.commit_time_ms(), before_commit_ms);
      EXPECT_LE(p.commit_time_ms(), after_commit_ms);
    } else {
      EXPECT_EQ(p.committed_offset(), -1);
      EXPECT_EQ(p.commit_time_ms(), 0);
      EXPECT_EQ(p.lag(), produced[p.partition()]);
    }
  }

  // New records raise the lag by exactly their number.
  MustProduce("lag", 0, 6);
  d = MustDescribe("lagging");
  EXPECT_EQ(d.partitions(0).lag(), produced[0] + 6 - consumed[0]);
}

TEST_F(GroupServiceTest, ListAndDeleteGroups) {
  MustCreateTopic("t", 2);
  MustProduce("t", 0, 1);
  v1::JoinGroupResponse a = MustJoin("alpha", {"t"});
  v1::JoinGroupResponse b = MustJoin("beta", {"t"});
  v1::ResetOffsetsRequest r = ResetRequest("gamma", "t");
  r.set_to_earliest(true);
  MustReset(r);  // a group with offsets and no members
  EXPECT_THAT(ListGroups(), ElementsAre("alpha", "beta", "gamma"));

  grpc::Status s = DeleteGroup("alpha", /*force=*/false);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << Describe(s);
  s = DeleteGroup("alpha", /*force=*/true);
  EXPECT_TRUE(s.ok()) << Describe(s);
  v1::HeartbeatResponse ignored;
  EXPECT_EQ(Heartbeat("alpha", a.member_id(), &ignored).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  v1::DescribeGroupResponse d;
  EXPECT_EQ(DescribeGroup("alpha", &d).error_code(), grpc::StatusCode::NOT_FOUND);

  ASSERT_TRUE(Leave("beta", b.member_id()).ok());
  EXPECT_TRUE(DeleteGroup("beta", /*force=*/false).ok());
  EXPECT_TRUE(DeleteGroup("gamma", /*force=*/false).ok());
  EXPECT_EQ(DeleteGroup("gamma", /*force=*/false).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(ListGroups(), IsEmpty());

  // Deleted state stays deleted across a restart.
  ASSERT_TRUE(server_->Terminate().ok());
  ASSERT_TRUE(server_->Restart().ok());
  Connect();
  EXPECT_THAT(ListGroups(), IsEmpty());
}

TEST_F(GroupServiceTest, LatestGroupsStartAtTheEndAndKeepTheirSetting) {
  MustCreateTopic("fresh", 2);
  for (int p = 0; p < 2; ++p) MustProduce("fresh", p, 4);
  v1::JoinGroupRequest request = JoinRequest("tail", {"fresh"});
  request.set_auto_offset_reset(v1::AUTO_OFFSET_RESET_LATEST);
  v1::JoinGroupResponse a;
  ASSERT_TRUE(Join(request, &a).ok());
  ASSERT_EQ(a.assignment_size(), 2);
  for (const v1::PartitionAssignment& p : a.assignment()) {
    EXPECT_EQ(p.start_offset(), 4);
    EXPECT_FALSE(p.committed());
  }
  // Only the first Join sets it.
  request.set_auto_offset_reset(v1::AUTO_OFFSET_RESET_EARLIEST);
  v1::JoinGroupResponse b;
  ASSERT_TRUE(Join(request, &b).ok());
  for (const v1::PartitionAssignment& p : b.assignment()) EXPECT_EQ(p.start_offset(), 4);
  EXPECT_EQ(MustDescribe("tail").auto_offset_reset(), v1::AUTO_OFFSET_RESET_LATEST);
}

TEST_F(GroupServiceTest, RequestsAreValidated) {
  MustCreateTopic("v", 2);
  MustProduce("v", 0, 3);
  struct BadJoin {
    v1::JoinGroupRequest request;
    grpc::StatusCode code;
  };
  std::vector<BadJoin> joins = {
      {JoinRequest("bad group", {"v"}), grpc::StatusCode::INVALID_ARGUMENT},
      {JoinRequest("", {"v"}), grpc::StatusCode::INVALID_ARGUMENT},
      {JoinRequest("g", {}), grpc::StatusCode::INVALID_ARGUMENT},
      {JoinRequest("g", {"no/slash"}), grpc::StatusCode::INVALID_ARGUMENT},
      {JoinRequest("g", {"missing"}), grpc::StatusCode::NOT_FOUND},
      {JoinRequest("g", {"v"}, 50), grpc::StatusCode::INVALID_ARGUMENT},
      {JoinRequest("g", {"v"}, 600001), grpc::StatusCode::INVALID_ARGUMENT},
      {JoinRequest("g", {"v"}, -1), grpc::StatusCode::INVALID_ARGUMENT},
      {JoinRequest("g", {"v"}), grpc::StatusCode::INVALID_ARGUMENT},
      {JoinRequest("g", {"v"}, kLongSessionMs, "ghost"), grpc::StatusCode::FAILED_PRECONDITION},
  };
  joins[8].request.set_auto_offset_reset(static_cast<v1::AutoOffsetReset>(7));
  for (const BadJoin& j : joins) {
    v1::JoinGroupResponse response;
    grpc::Status s = Join(j.request, &response);
    EXPECT_EQ(s.error_code(), j.code) << j.request.ShortDebugString() << ": " << Describe(s);
  }
  EXPECT_THAT(ListGroups(), IsEmpty()) << "refused joins create no group";

  v1::HeartbeatResponse hb;
  EXPECT_EQ(Heartbeat("g", "ghost", &hb).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Heartbeat("bad group", "ghost", &hb).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Leave("g", "ghost").error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  // session_timeout_ms 0 means the default.
  v1::JoinGroupResponse m;
  ASSERT_TRUE(Join(JoinRequest("g", {"v"}, 0), &m).ok());
  const int64_t gen = m.generation();
  struct BadCommit {
    std::string group, topic;
    std::vector<std::pair<int32_t, int64_t>> offsets;
    grpc::StatusCode code;
  };
  for (const BadCommit& c : std::vector<BadCommit>{
           {"g", "missing", {{0, 1}}, grpc::StatusCode::NOT_FOUND},
           {"g", "v", {{5, 1}}, grpc::StatusCode::OUT_OF_RANGE},  // no such partition
           {"g", "v", {{0, 4}}, grpc::StatusCode::OUT_OF_RANGE},  // above the end offset (3)
           {"g", "v", {{0, -1}}, grpc::StatusCode::OUT_OF_RANGE},
           {"g", "v", {}, grpc::StatusCode::INVALID_ARGUMENT},
           {"g", "bad topic", {{0, 1}}, grpc::StatusCode::INVALID_ARGUMENT},
           {"bad group", "v", {{0, 1}}, grpc::StatusCode::INVALID_ARGUMENT},
       }) {
    grpc::Status s = Commit(c.group, m.member_id(), gen, c.topic, c.offsets);
    EXPECT_EQ(s.error_code(), c.code) << c.group << "/" << c.topic << ": " << Describe(s);
  }
  grpc::Status s = Commit("g", m.member_id(), gen, "v", {{0, 3}});
  EXPECT_TRUE(s.ok()) << Describe(s);

  v1::DescribeGroupResponse d;
  EXPECT_EQ(DescribeGroup("bad group", &d).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(DescribeGroup("nobody", &d).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(DeleteGroup("nobody", false).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(DeleteGroup("", false).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(GroupServiceTest, HealthReportsTheGroupServiceServing) {
  auto health = grpc::health::v1::Health::NewStub(stubs_->channel);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("evlog.v1.GroupService");
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status s = health->Check(Deadline().get(), request, &response);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace evlog::testing
