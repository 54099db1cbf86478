// Consumer groups end to end: real evlogd processes (the tests/testing harness: 127.0.0.1, a
// free port, a temporary data directory) and consumers in separate processes
// (evlog_test_consumer, a thin wrapper of the library's Consumer that reports its assignment,
// commits and records on stdout), plus library-level cases run in this process.
//
// Every wait is on a condition with a deadline; nothing asserts on elapsed time.
#include <signal.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/admin.h"
#include "client/consumer.h"
#include "client/group_admin.h"
#include "client/producer.h"
#include "client/testing/child_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/server_process.h"

namespace evlog::client {
namespace {

using evlog::testing::ChildProcess;
using evlog::testing::ServerProcess;

constexpr absl::Duration kWait = absl::Seconds(30);  // upper bound of every wait

// What one evlog_test_consumer said so far.
struct Report {
  struct Rec {
    int32_t partition;
    int64_t offset;
  };
  std::vector<Rec> records;
  std::vector<int32_t> assignment;       // the latest
  bool assigned = false;                 // an assignment line was seen
  std::map<int32_t, int64_t> committed;  // latest committed offset per partition
  bool stalled = false;
};

Report Parse(const std::vector<std::string>& lines) {
  Report r;
  for (const std::string& line : lines) {
    const auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) continue;
    if (j.contains("topic")) {
      r.records.push_back({j["partition"].get<int32_t>(), j["offset"].get<int64_t>()});
    } else if (j["event"] == "assignment") {
      r.assignment = j["partitions"].get<std::vector<int32_t>>();
      r.assigned = true;
    } else if (j["event"] == "committed") {
      r.committed[j["partition"].get<int32_t>()] = j["offset"].get<int64_t>();
    } else if (j["event"] == "stalled") {
      r.stalled = true;
    }
  }
  return r;
}

class ConsumerGroupTest : public ::testing::Test {
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
    admin_ = Admin::Create(server_->address());
    groups_ = GroupAdmin::Create(server_->address());
  }

  void CreateTopic(const std::string& name, int32_t partitions) {
    auto t = admin_->CreateTopic(name, {.partitions = partitions});
    ASSERT_TRUE(t.ok()) << t.status();
  }

  // Appends `per_partition` records to each partition of `topic`, values "P-I".
  void Produce(const std::string& topic, int32_t partitions, int per_partition) {
    auto producer = Producer::Create(server_->address());
    for (int32_t p = 0; p < partitions; ++p) {
      for (int i = 0; i < per_partition; ++i) {
        ProducerRecord r;
        r.value = absl::StrCat(p, "-", i);
        ASSERT_TRUE(producer->Send(topic, std::move(r), p).ok());
      }
    }
    ASSERT_TRUE(producer->Close(absl::Now() + kWait).ok());
  }

  std::unique_ptr<ChildProcess> StartConsumer(const std::string& group, const std::string& topic,
                                              int session_ms, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {EVLOG_TEST_CONSUMER_PATH, "--server=" + server_->address(),
                                     "--group=" + group, "--topic=" + topic,
                                     absl::StrCat("--session-timeout-ms=", session_ms)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto child = ChildProcess::Start(argv);
    EXPECT_TRUE(child.ok()) << child.status();
    return child.ok() ? *std::move(child) : nullptr;
  }

  // Waits until the consumers' latest assignments are disjoint, cover partitions 0..n-1 and
  // each has n/k or n/k+1 of them (as each consumer itself reports: it has stopped reading
  // everything else).
  static bool WaitBalanced(const std::vector<ChildProcess*>& consumers, int32_t n) {
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      std::multiset<int32_t> all;
      bool ok = true;
      const size_t k = consumers.size();
      for (ChildProcess* c : consumers) {
        Report r = Parse(c->Lines());
        const size_t have = r.assignment.size();
        ok = ok && r.assigned && have >= n / k && have <= (n + k - 1) / k;
        all.insert(r.assignment.begin(), r.assignment.end());
      }
      if (ok && all.size() == static_cast<size_t>(n) &&
          std::set<int32_t>(all.begin(), all.end()).size() == all.size()) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));  // polling a condition, not a timing assumption
    }
    return false;
  }

  // Waits until the consumers together printed every (partition, offset) of `n` partitions
  // with `per_partition` records each.
  static bool WaitAllPrinted(const std::vector<ChildProcess*>& consumers, int32_t n,
                             int per_partition) {
    const absl::Time deadline = absl::Now() + kWait;
    while (absl::Now() < deadline) {
      std::set<std::pair<int32_t, int64_t>> seen;
      for (ChildProcess* c : consumers) {
        for (const auto& r : Parse(c->Lines()).records) seen.insert({r.partition, r.offset});
      }
      if (seen.size() == static_cast<size_t>(n) * per_partition) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  // Asserts that every partition of the group has committed == end (lag 0).
  void ExpectNoLag(const std::string& group, int32_t partitions) {
    auto d = groups_->DescribeGroup(group);
    ASSERT_TRUE(d.ok()) << d.status();
    ASSERT_EQ(d->partitions.size(), static_cast<size_t>(partitions));
    for (const GroupPartitionInfo& p : d->partitions) {
      EXPECT_EQ(p.lag, 0) << p.tp.topic << ":" << p.tp.partition;
      EXPECT_EQ(p.committed_offset, p.end_offset) << p.tp.topic << ":" << p.tp.partition;
    }
  }

  static ServerProcess* server_;
  std::unique_ptr<Admin> admin_;
  std::unique_ptr<GroupAdmin> groups_;
};

ServerProcess* ConsumerGroupTest::server_ = nullptr;

TEST_F(ConsumerGroupTest, ConsumerProcessesSharePartitionsBalancedAndProcessEveryRecordOnce) {
  constexpr int32_t kPartitions = 12;
  constexpr int kPerPartition = 100;
  CreateTopic("shared", kPartitions);
  std::vector<std::unique_ptr<ChildProcess>> owned;
  std::vector<ChildProcess*> consumers;
  for (int i = 0; i < 3; ++i) {
    owned.push_back(StartConsumer("sharers", "shared", 2000));
    ASSERT_NE(owned.back(), nullptr);
    consumers.push_back(owned.back().get());
  }
  ASSERT_TRUE(WaitBalanced(consumers, kPartitions));
  // The server's view agrees: three members with four partitions each.
  auto d = groups_->DescribeGroup("sharers");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->members.size(), 3u);
  for (const GroupMemberInfo& m : d->members) EXPECT_EQ(m.assignment.size(), 4u) << m.member_id;

  Produce("shared", kPartitions, kPerPartition);
  ASSERT_TRUE(WaitAllPrinted(consumers, kPartitions, kPerPartition));

  // Each record exactly once, each consumer only from its own partitions, in offset order.
  std::map<std::pair<int32_t, int64_t>, int> count;
  for (ChildProcess* c : consumers) {
    Report r = Parse(c->Lines());
    const std::set<int32_t> mine(r.assignment.begin(), r.assignment.end());
    EXPECT_EQ(r.records.size(), mine.size() * kPerPartition);
    std::map<int32_t, int64_t> next;
    for (const auto& rec : r.records) {
      ++count[{rec.partition, rec.offset}];
      EXPECT_TRUE(mine.contains(rec.partition)) << "partition " << rec.partition;
      EXPECT_EQ(rec.offset, next[rec.partition]++) << "partition " << rec.partition;
    }
  }
  EXPECT_EQ(count.size(), static_cast<size_t>(kPartitions * kPerPartition));
  for (const auto& [key, n] : count) EXPECT_EQ(n, 1) << key.first << "@" << key.second;

  for (ChildProcess* c : consumers) c->Signal(SIGTERM);
  for (ChildProcess* c : consumers) EXPECT_EQ(c->Wait(absl::Now() + kWait), 0) << c->Stderr();
  ExpectNoLag("sharers", kPartitions);
  d = groups_->DescribeGroup("sharers");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->members.empty()) << "members leave on SIGTERM";
}

TEST_F(ConsumerGroupTest,
       AKilledConsumersPartitionsAreTakenOverAndOnlyItsUncommittedRecordsRepeat) {
  constexpr int32_t kPartitions = 6;
  constexpr int kPerPartition = 200;
  constexpr int kSessionMs = 1000;
  CreateTopic("victims", kPartitions);
  auto survivor_a = StartConsumer("takeover", "victims", kSessionMs);
  auto survivor_b = StartConsumer("takeover", "victims", kSessionMs);
  // The victim takes small batches and, after 60 records, stops polling (so its last batch is
  // handed out but never committed) while still heartbeating: killed then, it must cause the
  // redelivery of exactly that batch.
  auto victim =
      StartConsumer("takeover", "victims", kSessionMs, {"--max-per-poll=25", "--stall-after=60"});
  ASSERT_TRUE(survivor_a && survivor_b && victim);
  ASSERT_TRUE(WaitBalanced({survivor_a.get(), survivor_b.get(), victim.get()}, kPartitions));

  Produce("victims", kPartitions, kPerPartition);
  ASSERT_TRUE(victim->WaitForLines(
      [](const std::vector<std::string>& lines) { return Parse(lines).stalled; },
      absl::Now() + kWait));
  const Report dead = Parse(victim->Lines());
  ASSERT_EQ(kill(victim->pid(), SIGKILL), 0);
  EXPECT_EQ(victim->Wait(absl::Now() + kWait), 128 + SIGKILL);

  // After the session timeout the survivors take over the victim's partitions (3 each) and
  // together everything is printed.
  std::vector<ChildProcess*> survivors = {survivor_a.get(), survivor_b.get()};
  ASSERT_TRUE(WaitBalanced(survivors, kPartitions));
  std::vector<ChildProcess*> everyone = {survivor_a.get(), survivor_b.get(), victim.get()};
  ASSERT_TRUE(WaitAllPrinted(everyone, kPartitions, kPerPartition));

  // The bound: what the victim printed at or after its last commit, per partition it owned.
  std::map<int32_t, int64_t> dead_committed;  // 0: nothing committed, started at 0
  for (int32_t p : dead.assignment) {
    auto it = dead.committed.find(p);
    dead_committed[p] = it != dead.committed.end() ? it->second : 0;
  }
  std::set<std::pair<int32_t, int64_t>> uncommitted;
  for (const auto& rec : dead.records) {
    ASSERT_TRUE(dead_committed.contains(rec.partition));
    if (rec.offset >= dead_committed[rec.partition])
      uncommitted.insert({rec.partition, rec.offset});
  }

  std::map<std::pair<int32_t, int64_t>, int> count;
  for (ChildProcess* c : everyone) {
    for (const auto& rec : Parse(c->Lines()).records) ++count[{rec.partition, rec.offset}];
  }
  int duplicates = 0;
  for (const auto& [key, n] : count) {
    if (n == 1) continue;
    duplicates += n - 1;
    EXPECT_EQ(n, 2) << key.first << "@" << key.second;
    // Nothing the group had committed is read again: only the victim's uncommitted tail.
    EXPECT_TRUE(uncommitted.contains(key)) << key.first << "@" << key.second;
  }
  // The survivors started the victim's partitions exactly at its committed offsets.
  for (ChildProcess* c : survivors) {
    std::map<int32_t, int64_t> first;
    for (const auto& rec : Parse(c->Lines()).records) first.try_emplace(rec.partition, rec.offset);
    for (const auto& [p, committed] : dead_committed) {
      if (first.contains(p)) {
        EXPECT_EQ(first[p], committed) << "partition " << p;
      }
    }
  }
  std::cout << "victim printed " << dead.records.size() << " records, " << uncommitted.size()
            << " of them uncommitted; duplicates: " << duplicates << "\n";
  RecordProperty("duplicates", duplicates);
  RecordProperty("uncommitted_bound", static_cast<int>(uncommitted.size()));
  EXPECT_LE(duplicates, static_cast<int>(uncommitted.size()));
  // The victim stalled with a handed-out, uncommitted batch, so the bound is reached exactly.
  EXPECT_EQ(duplicates, static_cast<int>(uncommitted.size()));
  EXPECT_GE(duplicates, 1);

  for (ChildProcess* c : survivors) c->Signal(SIGTERM);
  for (ChildProcess* c : survivors) EXPECT_EQ(c->Wait(absl::Now() + kWait), 0) << c->Stderr();
  ExpectNoLag("takeover", kPartitions);
}

// In this process: a member whose partition moved cannot commit it (FAILED_PRECONDITION from
// the server's generation/ownership check), and the new owner reads it from the group's
// committed offset.
TEST_F(ConsumerGroupTest, AMemberCannotCommitAPartitionThatMovedAway) {
  CreateTopic("moving", 2);
  Produce("moving", 2, 5);
  ConsumerOptions o;
  o.group = "movers";
  o.topics = {"moving"};
  o.auto_commit = false;
  o.session_timeout = absl::Seconds(30);
  o.heartbeat_interval = absl::Seconds(20);  // it will not hear of the move by itself
  auto first = Consumer::Create(server_->address(), o);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_EQ((*first)->Assignment().size(), 2u);
  std::vector<ConsumedRecord> got;
  const absl::Time deadline = absl::Now() + kWait;
  while (got.size() < 10 && absl::Now() < deadline) {
    auto r = (*first)->Poll(100, absl::Now() + absl::Milliseconds(100));
    ASSERT_TRUE(r.ok()) << r.status();
    got.insert(got.end(), r->begin(), r->end());
  }
  ASSERT_EQ(got.size(), 10u);

  ConsumerOptions o2 = o;
  o2.heartbeat_interval = absl::ZeroDuration();
  auto second = Consumer::Create(server_->address(), o2);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ((*second)->Assignment().size(), 1u) << "sticky and balanced: one moves";
  const TopicPartition moved = (*second)->Assignment()[0];

  absl::Status s = (*first)->Commit();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()),
              ::testing::HasSubstr(absl::StrCat("moving:", moved.partition)));
  EXPECT_EQ((*first)->Assignment().size(), 1u) << "the commit's refresh dropped the moved one";
  auto d = groups_->DescribeGroup("movers");
  ASSERT_TRUE(d.ok()) << d.status();
  for (const GroupPartitionInfo& p : d->partitions) {
    if (p.tp == moved) {
      EXPECT_EQ(p.committed_offset, -1) << "the old owner's commit was refused";
    } else {
      EXPECT_EQ(p.committed_offset, 5) << "the kept partition was committed";
    }
  }
  // The new owner reads the moved partition from the beginning (nothing committed there).
  std::vector<ConsumedRecord> again;
  const absl::Time deadline2 = absl::Now() + kWait;
  while (again.size() < 5 && absl::Now() < deadline2) {
    auto r = (*second)->Poll(100, absl::Now() + absl::Milliseconds(100));
    ASSERT_TRUE(r.ok()) << r.status();
    again.insert(again.end(), r->begin(), r->end());
  }
  ASSERT_EQ(again.size(), 5u);
  EXPECT_EQ(again[0].offset, 0);
  EXPECT_EQ(again[0].partition, moved.partition);
  EXPECT_TRUE((*first)->Close().ok());
  EXPECT_TRUE((*second)->Close().ok());
}

// In this process: a forced reset removes the live member; it joins again on its next
// heartbeat and reads from the new offset.
TEST_F(ConsumerGroupTest, AForcedResetMakesTheMemberJoinAgainAndReadFromTheNewOffset) {
  CreateTopic("rewind", 1);
  Produce("rewind", 1, 6);
  ConsumerOptions o;
  o.group = "rewinders";
  o.topics = {"rewind"};
  o.session_timeout = absl::Seconds(3);
  auto consumer = Consumer::Create(server_->address(), o);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  std::vector<int64_t> offsets;
  const absl::Time deadline = absl::Now() + kWait;
  while (offsets.size() < 6 && absl::Now() < deadline) {
    auto r = (*consumer)->Poll(100, absl::Now() + absl::Milliseconds(100));
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& rec : *r) offsets.push_back(rec.offset);
  }
  ASSERT_EQ(offsets.size(), 6u);
  const std::string old_member = (*consumer)->member_id();

  auto refused = groups_->ResetOffsets("rewinders", "rewind", std::nullopt,
                                       {.kind = ResetTarget::kToOffset, .value = 2}, false);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  auto reset = groups_->ResetOffsets("rewinders", "rewind", std::nullopt,
                                     {.kind = ResetTarget::kToOffset, .value = 2}, true);
  ASSERT_TRUE(reset.ok()) << reset.status();
  EXPECT_THAT(*reset, ::testing::ElementsAre(std::make_pair(0, int64_t{2})));

  std::vector<int64_t> again;
  const absl::Time deadline2 = absl::Now() + kWait;
  while (again.size() < 4 && absl::Now() < deadline2) {
    auto r = (*consumer)->Poll(100, absl::Now() + absl::Milliseconds(100));
    ASSERT_TRUE(r.ok()) << r.status();
    for (const auto& rec : *r) again.push_back(rec.offset);
  }
  EXPECT_THAT(again, ::testing::ElementsAre(2, 3, 4, 5));
  EXPECT_NE((*consumer)->member_id(), old_member);
  EXPECT_GE((*consumer)->Stats().rejoins, 1);
  ASSERT_TRUE((*consumer)->Close().ok());
  ExpectNoLag("rewinders", 1);
}

}  // namespace
}  // namespace evlog::client
