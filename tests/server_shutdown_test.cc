// Graceful shutdown: SIGTERM during heavy produce loses no acknowledged record, ends produce
// streams with UNAVAILABLE (after answering what they read) and follow readers too, and evlogd
// exits 0 within its --shutdown-timeout.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/produce_workload.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

constexpr int kPartitions = 4;
constexpr char kTopic[] = "drain";

TEST(ServerShutdownTest, SigtermDuringHeavyProduceLosesNothingAcknowledged) {
  ServerProcessOptions options;
  options.extra_flags = {"--shutdown-timeout=5s"};
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
    producers.push_back(std::make_unique<PartitionProducer>(&addresses, kTopic, p, 16));
    producers.back()->Start();
  }
  auto total_acked = [&] {
    int64_t total = 0;
    for (const auto& producer : producers) total += producer->acked_records();
    return total;
  };
  ASSERT_TRUE(WaitFor([&] { return total_acked() >= 2000; }, absl::Seconds(30)));

  // A follow reader must not hold the shutdown up: it ends with UNAVAILABLE.
  EvlogStubs stubs((*server)->address());
  v1::ReadRequest follow = ReadFrom(kTopic, 0, 0);
  follow.set_follow(true);
  auto follow_context = Deadline(absl::Seconds(60));
  auto follower = stubs.reader->Read(follow_context.get(), follow);
  v1::ReadResponse response;
  ASSERT_TRUE(follower->Read(&response));

  const absl::Time sigterm = absl::Now();
  absl::StatusOr<int> exit_status = (*server)->Terminate(absl::Seconds(20));
  const absl::Duration took = absl::Now() - sigterm;
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0) << (*server)->LogTail();
  EXPECT_LT(took, absl::Seconds(5) + absl::Seconds(2)) << "shutdown exceeded its deadline";

  while (follower->Read(&response)) {
  }
  EXPECT_EQ(follower->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);

  for (auto& producer : producers) producer->Stop();
  int unavailable_endings = 0;
  for (const auto& producer : producers) {
    auto endings = producer->stream_endings();
    unavailable_endings += endings[static_cast<int>(grpc::StatusCode::UNAVAILABLE)];
  }
  EXPECT_GE(unavailable_endings, kPartitions) << "every producer's stream ends UNAVAILABLE";

  ASSERT_TRUE((*server)->Restart().ok());
  for (const auto& producer : producers) {
    ExpectAllAcknowledgedPresent((*server)->address(), kTopic, *producer);
  }
  std::printf("shutdown test: %lld records acknowledged; SIGTERM to exit took %s\n",
              static_cast<long long>(total_acked()), absl::FormatDuration(took).c_str());
}

}  // namespace
}  // namespace evlog::testing
