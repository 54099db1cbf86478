// Crash safety: producers write continuously while evlogd is killed with SIGKILL at random
// moments and restarted on the same data directory, many times. Afterwards every acknowledged
// record is in the log, in order, at the offset it was acknowledged with, and offsets are
// dense. (fsync=always: an acknowledgement means "fsynced".) Once with default segments, once
// with tiny ones, so that kills also land while segments roll and while the next segment is
// being made ahead (storage/spare_segments.cc).
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/produce_workload.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

constexpr int kPartitions = 4;
constexpr int kKills = 15;
constexpr char kTopic[] = "crash";

// The test, against an evlogd started with `flags`.
void KillRepeatedlyAndCheckEveryAcknowledgedRecord(std::vector<std::string> flags) {
  ServerProcessOptions options;
  options.extra_flags = std::move(flags);
  auto server = ServerProcess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  {
    EvlogStubs stubs((*server)->address());
    ASSERT_TRUE(CreateTopic(stubs, kTopic, kPartitions).ok());
  }
  AddressBook addresses;
  addresses.Set((*server)->address());
  std::vector<std::unique_ptr<PartitionProducer>> producers;
  for (int p = 0; p < kPartitions; ++p) {
    producers.push_back(std::make_unique<PartitionProducer>(&addresses, kTopic, p, 8));
    producers.back()->Start();
  }
  auto total_acked = [&] {
    int64_t total = 0;
    for (const auto& producer : producers) total += producer->acked_records();
    return total;
  };

  const unsigned seed = std::random_device{}();
  std::mt19937 random(seed);
  SCOPED_TRACE(::testing::Message() << "random seed " << seed);
  std::uniform_int_distribution<int> extra_ms(0, 150);
  for (int kill = 0; kill < kKills; ++kill) {
    // Let the producers get going on this run, then kill at a random moment.
    const int64_t before = total_acked();
    ASSERT_TRUE(WaitFor([&] { return total_acked() >= before + 40; }, absl::Seconds(30)))
        << "producers made no progress after restart " << kill << "; log:\n"
        << (*server)->LogTail();
    absl::SleepFor(absl::Milliseconds(extra_ms(random)));
    std::vector<int64_t> streams_before;
    for (const auto& producer : producers) streams_before.push_back(producer->streams_ended());
    (*server)->Kill();
    // Producers retry against a closed port until the restarted server has been checked.
    addresses.Set("127.0.0.1:1");
    // Once every producer has processed the end of its stream to the killed server, nothing
    // more can be acknowledged: what was acknowledged must have survived.
    ASSERT_TRUE(WaitFor(
        [&] {
          for (int p = 0; p < kPartitions; ++p) {
            if (producers[p]->streams_ended() <= streams_before[p]) return false;
          }
          return true;
        },
        absl::Seconds(20)));
    std::vector<int64_t> acked_ends;
    for (const auto& producer : producers) acked_ends.push_back(producer->acked_end_offset());
    ASSERT_TRUE((*server)->Restart().ok()) << "restart " << kill;
    EvlogStubs stubs((*server)->address());
    const std::vector<int64_t> ends = EndOffsets(stubs, kTopic);
    ASSERT_EQ(ends.size(), acked_ends.size());
    for (int p = 0; p < kPartitions; ++p) {
      EXPECT_GE(ends[p], acked_ends[p])
          << "partition " << p << " lost acknowledged records in kill " << kill << "; log of "
          << (*server)->log_path() << ":\n"
          << (*server)->LogTail();
    }
    addresses.Set((*server)->address());
  }
  ASSERT_TRUE(WaitFor([&] { return total_acked() > 0; }, absl::Seconds(10)));
  for (auto& producer : producers) producer->Stop();

  int64_t stored = 0, acked = 0;
  for (const auto& producer : producers) {
    stored += ExpectAllAcknowledgedPresent((*server)->address(), kTopic, *producer);
    acked += producer->acked_records();
  }
  EXPECT_GE(stored, acked);
  std::printf("crash test: %d kills, %lld records acknowledged, %lld stored\n", kKills,
              static_cast<long long>(acked), static_cast<long long>(stored));
}

TEST(ServerCrashTest, AcknowledgedRecordsSurviveRepeatedKill9) {
  KillRepeatedlyAndCheckEveryAcknowledgedRecord({});
}

TEST(ServerCrashTest, AcknowledgedRecordsSurviveKill9WhileSegmentsRoll) {
  KillRepeatedlyAndCheckEveryAcknowledgedRecord({"--segment-max-bytes=16KiB"});
}

}  // namespace
}  // namespace evlog::testing
