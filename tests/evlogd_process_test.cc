// evlogd as a process: command-line errors, a port or data directory already in use, --help,
// and a graceful shutdown that open health watchers do not hold up.
#include <string>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

using ::testing::HasSubstr;

TEST(EvlogdProcessTest, HelpListsEveryFlagWithDashes) {
  auto result = RunCommand({BinaryPath("evlogd"), "--help"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  for (const char* flag : {"--listen", "--data-dir", "--fsync", "--max-record-bytes",
                           "--max-batch-bytes", "--shutdown-timeout"}) {
    EXPECT_THAT(result->out, HasSubstr(flag));
  }
}

TEST(EvlogdProcessTest, BadFlagValuesExitWithStatus2) {
  TempDir dir;
  for (const char* bad : {"--fsync=sometimes", "--listen=nonsense", "--max-record-bytes=0",
                          "--max-batch-bytes=100"}) {
    auto result = RunCommand({BinaryPath("evlogd"), "--data-dir=" + dir.path(), bad});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(result->exit_code, 2) << bad << ": " << result->err;
    EXPECT_THAT(result->err, HasSubstr("INVALID_ARGUMENT")) << bad;
    EXPECT_TRUE(result->out.empty()) << bad;
  }
}

TEST(EvlogdProcessTest, PortAlreadyInUseIsAnError) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  TempDir other;
  auto result = RunCommand(
      {BinaryPath("evlogd"), "--listen=" + (*server)->address(), "--data-dir=" + other.path()});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->err, HasSubstr("cannot listen on " + (*server)->address()));
  EXPECT_TRUE(result->out.empty()) << "no ready line when the port is taken";
}

TEST(EvlogdProcessTest, DataDirectoryInUseIsAnError) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  auto result = RunCommand(
      {BinaryPath("evlogd"), "--listen=127.0.0.1:0", "--data-dir=" + (*server)->data_dir()});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 1);
  EXPECT_THAT(result->err, HasSubstr("FAILED_PRECONDITION"));
  EXPECT_TRUE(result->out.empty());
}

TEST(EvlogdProcessTest, ShutdownIsNotHeldUpByHealthWatchers) {
  ServerProcessOptions options;
  options.extra_flags = {"--shutdown-timeout=20s"};
  auto server = ServerProcess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EvlogStubs stubs((*server)->address());
  auto health = grpc::health::v1::Health::NewStub(stubs.channel);
  auto context = Deadline(absl::Seconds(60));
  auto watch = health->Watch(context.get(), grpc::health::v1::HealthCheckRequest());
  grpc::health::v1::HealthCheckResponse status;
  ASSERT_TRUE(watch->Read(&status));
  EXPECT_EQ(status.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  const absl::Time start = absl::Now();
  auto exit_status = (*server)->Terminate(absl::Seconds(30));
  ASSERT_TRUE(exit_status.ok()) << exit_status.status();
  EXPECT_EQ(*exit_status, 0);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "an open Watch delayed the shutdown";
  while (watch->Read(&status)) {
    EXPECT_NE(status.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
  watch->Finish();
}

}  // namespace
}  // namespace evlog::testing
