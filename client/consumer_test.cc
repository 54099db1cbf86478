// Unit tests of the Consumer against an in-process fake server (GroupService + ReaderService
// on 127.0.0.1 with a free port) whose assignment, membership and commits the test controls.
// They pin down the commit semantics and the reactions to reassignment, lost partitions and
// unknown members, independently of the real coordinator (consumer_group_test.cc runs the
// same behaviours against evlogd).
#include "client/consumer.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "evlog/v1/evlog.grpc.pb.h"
#include "evlog/v1/groups.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evlog::client {
namespace {

namespace v1 = evlog::v1;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(10);  // upper bound of every wait

// The fake's whole state, shared by both services.
struct FakeState {
  absl::Mutex mu;
  // Records per partition of topic "t" (offset = index).
  std::map<int32_t, std::vector<std::string>> log ABSL_GUARDED_BY(mu);
  int64_t generation ABSL_GUARDED_BY(mu) = 0;
  // Member -> partition -> generation in which it got it.
  std::map<std::string, std::map<int32_t, int64_t>> members ABSL_GUARDED_BY(mu);
  std::set<int32_t> join_assignment ABSL_GUARDED_BY(mu);  // what a joining member gets
  std::map<int32_t, int64_t> committed ABSL_GUARDED_BY(mu);
  std::vector<std::string> missing_topics ABSL_GUARDED_BY(mu);  // Join answers NOT_FOUND
  int joins ABSL_GUARDED_BY(mu) = 0;
  int heartbeats ABSL_GUARDED_BY(mu) = 0;
  int leaves ABSL_GUARDED_BY(mu) = 0;
  int refused_commits ABSL_GUARDED_BY(mu) = 0;

  void FillAssignment(const std::string& member,
                      google::protobuf::RepeatedPtrField<v1::PartitionAssignment>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (const auto& [p, gen] : members[member]) {
      v1::PartitionAssignment* a = out->Add();
      a->set_topic("t");
      a->set_partition(p);
      auto c = committed.find(p);
      a->set_start_offset(c != committed.end() ? c->second : 0);
      a->set_committed(c != committed.end());
      a->set_assigned_generation(gen);
    }
  }

  // Gives `member` exactly `partitions` in a new generation (kept ones keep their
  // generation). The member learns it at its next heartbeat.
  void Assign(const std::string& member, const std::set<int32_t>& partitions) {
    absl::MutexLock l(&mu);
    ++generation;
    std::map<int32_t, int64_t> next;
    for (int32_t p : partitions) {
      auto it = members[member].find(p);
      next[p] = it != members[member].end() ? it->second : generation;
    }
    members[member] = next;
  }
};

class FakeGroupService final : public v1::GroupService::Service {
 public:
  explicit FakeGroupService(FakeState* state) : s_(state) {}

  grpc::Status JoinGroup(grpc::ServerContext*, const v1::JoinGroupRequest* request,
                         v1::JoinGroupResponse* response) override {
    absl::MutexLock l(&s_->mu);
    for (const std::string& t : request->topics()) {
      for (const std::string& missing : s_->missing_topics) {
        if (t == missing) return {grpc::StatusCode::NOT_FOUND, "topic '" + t + "' not found"};
      }
    }
    if (!request->member_id().empty()) return {grpc::StatusCode::FAILED_PRECONDITION, "unknown"};
    const std::string id = absl::StrCat("m", ++s_->joins);
    ++s_->generation;
    for (int32_t p : s_->join_assignment) s_->members[id][p] = s_->generation;
    response->set_member_id(id);
    response->set_generation(s_->generation);
    s_->FillAssignment(id, response->mutable_assignment());
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override {
    absl::MutexLock l(&s_->mu);
    ++s_->heartbeats;
    if (!s_->members.contains(request->member_id())) {
      return {grpc::StatusCode::FAILED_PRECONDITION, "unknown member; join again"};
    }
    response->set_generation(s_->generation);
    s_->FillAssignment(request->member_id(), response->mutable_assignment());
    return grpc::Status::OK;
  }

  grpc::Status LeaveGroup(grpc::ServerContext*, const v1::LeaveGroupRequest* request,
                          v1::LeaveGroupResponse*) override {
    absl::MutexLock l(&s_->mu);
    ++s_->leaves;
    if (s_->members.erase(request->member_id()) == 0) {
      return {grpc::StatusCode::FAILED_PRECONDITION, "unknown member"};
    }
    return grpc::Status::OK;
  }

  grpc::Status CommitOffsets(grpc::ServerContext*, const v1::CommitOffsetsRequest* request,
                             v1::CommitOffsetsResponse*) override {
    absl::MutexLock l(&s_->mu);
    auto m = s_->members.find(request->member_id());
    if (m == s_->members.end()) {
      ++s_->refused_commits;
      return {grpc::StatusCode::FAILED_PRECONDITION, "unknown member"};
    }
    for (const auto& o : request->offsets()) {
      auto owned = m->second.find(o.partition());
      if (owned == m->second.end() || request->generation() < owned->second) {
        ++s_->refused_commits;
        return {grpc::StatusCode::FAILED_PRECONDITION,
                absl::StrCat("not the owner of partition ", o.partition())};
      }
    }
    for (const auto& o : request->offsets()) s_->committed[o.partition()] = o.offset();
    return grpc::Status::OK;
  }

 private:
  FakeState* s_;
};

class FakeReaderService final : public v1::ReaderService::Service {
 public:
  explicit FakeReaderService(FakeState* state) : s_(state) {}

  grpc::Status Read(grpc::ServerContext* context, const v1::ReadRequest* request,
                    grpc::ServerWriter<v1::ReadResponse>* writer) override {
    int64_t next = request->has_offset() ? request->offset() : 0;
    const absl::Duration beat = absl::Milliseconds(std::max(100, request->heartbeat_ms()));
    while (!context->IsCancelled()) {
      v1::ReadResponse response;
      response.set_partition(request->partition());
      {
        absl::MutexLock l(&s_->mu);
        const std::vector<std::string>& log = s_->log[request->partition()];
        auto more = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(s_->mu) {
          return static_cast<int64_t>(s_->log[request->partition()].size()) > next;
        };
        s_->mu.AwaitWithTimeout(absl::Condition(&more), std::min(beat, absl::Milliseconds(50)));
        for (; next < static_cast<int64_t>(log.size()); ++next) {
          v1::Record* r = response.add_records();
          r->set_offset(next);
          r->set_timestamp_ms(1700000000000 + next);
          r->set_value(log[next]);
        }
        response.set_next_offset(next);
        response.set_high_watermark(static_cast<int64_t>(log.size()));
      }
      if (!writer->Write(response)) break;
    }
    return grpc::Status::OK;
  }

 private:
  FakeState* s_;
};

class ConsumerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&groups_);
    builder.RegisterService(&reader_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
  }

  void TearDown() override {
    consumer_.reset();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  }

  void Append(int32_t partition, const std::vector<std::string>& values) {
    absl::MutexLock l(&state_.mu);
    for (const std::string& v : values) state_.log[partition].push_back(v);
  }

  ConsumerOptions Options() {
    ConsumerOptions o;
    o.group = "g";
    o.topics = {"t"};
    o.session_timeout = absl::Milliseconds(600);  // heartbeats every 200 ms
    o.call_timeout = absl::Seconds(5);
    o.reader.heartbeat = absl::Milliseconds(100);
    o.on_assignment = [this](const AssignmentChange& c) {
      absl::MutexLock l(&changes_mu_);
      changes_.push_back(c);
    };
    return o;
  }

  void Start(ConsumerOptions options) {
    auto c = Consumer::Create(address_, std::move(options));
    ASSERT_TRUE(c.ok()) << c.status();
    consumer_ = *std::move(c);
  }

  // Polls until `n` records came or the wait bound passed.
  std::vector<ConsumedRecord> PollN(size_t n, size_t max_per_poll = 1000) {
    std::vector<ConsumedRecord> all;
    const absl::Time deadline = absl::Now() + kWait;
    while (all.size() < n && absl::Now() < deadline) {
      auto r = consumer_->Poll(std::min(max_per_poll, n - all.size()),
                               absl::Now() + absl::Milliseconds(100));
      EXPECT_TRUE(r.ok()) << r.status();
      if (!r.ok()) break;
      all.insert(all.end(), r->begin(), r->end());
    }
    return all;
  }

  // Waits until `done()` holds, or the wait bound passed; returns done().
  template <typename F>
  bool WaitFor(F done) {
    const absl::Time deadline = absl::Now() + kWait;
    while (!done() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
    return done();
  }

  std::vector<TopicPartition> Partitions(std::vector<int32_t> ps) {
    std::vector<TopicPartition> out;
    for (int32_t p : ps) out.push_back({"t", p});
    return out;
  }

  static std::vector<std::string> Values(const std::vector<ConsumedRecord>& rs) {
    std::vector<std::string> v;
    for (const auto& r : rs) v.push_back(r.value);
    return v;
  }

  std::map<int32_t, int64_t> Committed() {
    absl::MutexLock l(&state_.mu);
    return state_.committed;
  }

  FakeState state_;
  FakeGroupService groups_{&state_};
  FakeReaderService reader_{&state_};
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::unique_ptr<Consumer> consumer_;
  absl::Mutex changes_mu_;
  std::vector<AssignmentChange> changes_ ABSL_GUARDED_BY(changes_mu_);
};

TEST_F(ConsumerTest, AutoCommitCommitsWhatWasHandedOutAtTheNextPollAndOnClose) {
  Append(0, {"a", "b", "c", "d", "e"});
  {
    absl::MutexLock l(&state_.mu);
    state_.join_assignment = {0};
  }
  Start(Options());
  EXPECT_THAT(consumer_->Assignment(), ElementsAre(TopicPartition{"t", 0}));
  EXPECT_EQ(consumer_->member_id(), "m1");
  // The fake sends all five records in one response, so one Poll sees them all and hands
  // out exactly three.
  auto first = consumer_->Poll(3, absl::Now() + kWait);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(Values(*first), ElementsAre("a", "b", "c"));
  EXPECT_TRUE(Committed().empty()) << "nothing is committed before the caller asks for more";

  auto second = consumer_->Poll(10, absl::Now() + kWait);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(Values(*second), ElementsAre("d", "e"));
  EXPECT_EQ(Committed()[0], 3) << "the first batch counts as processed";
  EXPECT_EQ(consumer_->CommittedOffsets()[(TopicPartition{"t", 0})], 3);

  ASSERT_TRUE(consumer_->Close().ok());
  EXPECT_EQ(Committed()[0], 5) << "Close commits the last batch";
  absl::MutexLock l(&state_.mu);
  EXPECT_EQ(state_.leaves, 1);
  EXPECT_FALSE(state_.members.contains("m1"));
}

TEST_F(ConsumerTest, ExplicitCommitCommitsOnlyHandedOutRecords) {
  Append(0, {"a", "b", "c", "d", "e"});
  {
    absl::MutexLock l(&state_.mu);
    state_.join_assignment = {0};
  }
  ConsumerOptions o = Options();
  o.auto_commit = false;
  Start(o);
  auto first = consumer_->Poll(2, absl::Now() + kWait);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ(first->size(), 2u);
  ASSERT_TRUE(consumer_->Commit().ok());
  EXPECT_EQ(Committed()[0], 2) << "fetched-ahead records are not committed";
  EXPECT_EQ(PollN(3).size(), 3u);
  EXPECT_EQ(Committed()[0], 2) << "without auto-commit, Poll commits nothing";
  ASSERT_TRUE(consumer_->Close().ok());
  EXPECT_EQ(Committed()[0], 2) << "without auto-commit, Close commits nothing";
  EXPECT_TRUE(consumer_->Commit().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_F(ConsumerTest, ReassignmentStopsRevokedPartitionsAndStartsNewOnesAtTheirOffsets) {
  Append(0, {"p0-0", "p0-1"});
  Append(1, {"p1-0", "p1-1"});
  Append(2, {"p2-0", "p2-1", "p2-2"});
  {
    absl::MutexLock l(&state_.mu);
    state_.join_assignment = {0, 1};
    state_.committed[2] = 1;  // partition 2 will start at offset 1
  }
  ConsumerOptions o = Options();
  o.auto_commit = false;
  Start(o);
  EXPECT_EQ(PollN(4).size(), 4u);

  state_.Assign("m1", {1, 2});
  ASSERT_TRUE(WaitFor([&] { return consumer_->Assignment() == Partitions({1, 2}); }));
  Append(0, {"p0-late"});  // revoked: must not be delivered
  Append(1, {"p1-2"});
  std::vector<ConsumedRecord> after = PollN(3);
  std::set<std::string> values;
  for (const auto& r : after) values.insert(r.value);
  EXPECT_EQ(values, (std::set<std::string>{"p1-2", "p2-1", "p2-2"}));
  auto more = consumer_->Poll(10, absl::Now() + absl::Milliseconds(300));
  ASSERT_TRUE(more.ok());
  EXPECT_TRUE(more->empty()) << Values(*more)[0];

  // The commit tries partition 0's handed-out position too: refused (another member owns it)
  // and dropped, and named in the error; the owned partitions' positions go through.
  absl::Status committed = consumer_->Commit();
  EXPECT_EQ(committed.code(), absl::StatusCode::kFailedPrecondition) << committed;
  EXPECT_THAT(std::string(committed.message()), HasSubstr("t:0"));
  EXPECT_EQ(Committed(), (std::map<int32_t, int64_t>{{1, 3}, {2, 3}}));
  EXPECT_EQ(consumer_->Stats().partitions_lost, 1);
  EXPECT_TRUE(consumer_->Commit().ok()) << "the lost position was dropped";

  absl::MutexLock l(&changes_mu_);
  ASSERT_EQ(changes_.size(), 2u);  // the join, the reassignment
  EXPECT_THAT(changes_[1].revoked, ElementsAre(TopicPartition{"t", 0}));
  ASSERT_EQ(changes_[1].assigned.size(), 1u);
  EXPECT_EQ(changes_[1].assigned[0].tp, (TopicPartition{"t", 2}));
  EXPECT_EQ(changes_[1].assigned[0].start_offset, 1);
  EXPECT_TRUE(changes_[1].assigned[0].committed);
  EXPECT_EQ(changes_[1].assignment, Partitions({1, 2}));
}

TEST_F(ConsumerTest, ARefusedCommitRefreshesTheAssignmentCommitsTheRestAndNamesTheLoss) {
  Append(0, {"a", "b"});
  Append(1, {"c", "d"});
  {
    absl::MutexLock l(&state_.mu);
    state_.join_assignment = {0, 1};
  }
  ConsumerOptions o = Options();
  o.auto_commit = false;
  o.session_timeout = absl::Seconds(60);
  o.heartbeat_interval = absl::Seconds(30);  // only the commit's refresh will heartbeat
  Start(o);
  EXPECT_EQ(PollN(4).size(), 4u);
  state_.Assign("m1", {1});  // partition 0 moved; the consumer does not know yet
  absl::Status s = consumer_->Commit();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("t:0"));
  EXPECT_EQ(Committed()[1], 2) << "the partition still owned is committed after the refresh";
  EXPECT_FALSE(Committed().contains(0));
  EXPECT_EQ(consumer_->Assignment(), Partitions({1}));
  EXPECT_TRUE(consumer_->Commit().ok()) << "nothing left pending";
}

TEST_F(ConsumerTest, UnknownMemberJoinsAgainAndRestartsFromTheCommittedOffsets) {
  Append(0, {"a", "b", "c", "d"});
  {
    absl::MutexLock l(&state_.mu);
    state_.join_assignment = {0};
  }
  Start(Options());
  EXPECT_EQ(PollN(4).size(), 4u);
  {
    // As a forced reset does: the member is removed and the offset moved.
    absl::MutexLock l(&state_.mu);
    state_.members.erase("m1");
    state_.committed[0] = 1;
  }
  ASSERT_TRUE(WaitFor([&] { return consumer_->member_id() == "m2"; }));
  EXPECT_THAT(Values(PollN(3)), ElementsAre("b", "c", "d"));
  EXPECT_EQ(consumer_->Stats().rejoins, 1);
  // The handed-out position of the old membership (4) was not committed over the reset.
  EXPECT_EQ(consumer_->Poll(1, absl::Now() + absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kOk);
  EXPECT_EQ(Committed()[0], 4) << "committed by the new membership, after re-delivery";
  absl::MutexLock l(&changes_mu_);
  bool lost = false;
  for (const auto& c : changes_) lost = lost || c.membership_lost;
  EXPECT_TRUE(lost);
}

TEST_F(ConsumerTest, APartitionBackWithANewerGenerationRestartsAtTheGroupsOffset) {
  Append(0, {"a", "b", "c"});
  {
    absl::MutexLock l(&state_.mu);
    state_.join_assignment = {0};
  }
  ConsumerOptions o = Options();
  o.auto_commit = false;
  Start(o);
  EXPECT_EQ(PollN(3).size(), 3u);
  // Between two heartbeats the partition went to someone who committed 1, and came back.
  {
    absl::MutexLock l(&state_.mu);
    state_.generation += 2;
    state_.members["m1"][0] = state_.generation;
    state_.committed[0] = 1;
  }
  EXPECT_THAT(Values(PollN(2)), ElementsAre("b", "c"));
  EXPECT_TRUE(consumer_->Commit().ok());
  EXPECT_EQ(Committed()[0], 3);
}

TEST_F(ConsumerTest, HeartbeatsKeepTheSessionAlive) {
  {
    absl::MutexLock l(&state_.mu);
    state_.join_assignment = {0};
  }
  Start(Options());
  EXPECT_TRUE(WaitFor([&] {
    absl::MutexLock l(&state_.mu);
    return state_.heartbeats >= 3;
  }));
  EXPECT_EQ(consumer_->member_id(), "m1");
}

TEST_F(ConsumerTest, PollReturnsEmptyAtItsDeadlineAndRefusesBadCallsAndUseAfterClose) {
  {
    absl::MutexLock l(&state_.mu);
    state_.join_assignment = {0};
  }
  Start(Options());
  auto r = consumer_->Poll(10, absl::Now() + absl::Milliseconds(100));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(consumer_->Poll(0, absl::Now()).status().code(), absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(consumer_->Close().ok());
  EXPECT_TRUE(consumer_->Close().ok()) << "idempotent";
  EXPECT_EQ(consumer_->Poll(1, absl::Now()).status().code(), absl::StatusCode::kFailedPrecondition);
  absl::MutexLock l(&state_.mu);
  EXPECT_EQ(state_.leaves, 1);
}

TEST_F(ConsumerTest, CreateReportsBadOptionsAndJoinErrors) {
  ConsumerOptions no_group = Options();
  no_group.group = "";
  EXPECT_EQ(Consumer::Create(address_, no_group).status().code(),
            absl::StatusCode::kInvalidArgument);
  ConsumerOptions slow = Options();
  slow.heartbeat_interval = absl::Seconds(1);  // above the 600 ms session
  EXPECT_EQ(Consumer::Create(address_, slow).status().code(), absl::StatusCode::kInvalidArgument);
  {
    absl::MutexLock l(&state_.mu);
    state_.missing_topics = {"t"};
  }
  auto missing = Consumer::Create(address_, Options());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("'t'"));
  auto unreachable = Consumer::Create("127.0.0.1:1", Options());
  EXPECT_EQ(unreachable.status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace evlog::client
