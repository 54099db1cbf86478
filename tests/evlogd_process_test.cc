// evlogd as a process: command-line errors, a port or data directory already in use, --help,
// its open files limit, and a graceful shutdown that open health watchers do not hold up.
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <limits>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

// The soft "Max open files" limit of process `pid` from /proc, or 0 if it cannot be read.
uint64_t OpenFilesSoftLimit(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/limits"));
  std::string line;
  while (std::getline(in, line)) {
    if (!absl::StartsWith(line, "Max open files")) continue;
    std::vector<std::string> fields = absl::StrSplit(line, ' ', absl::SkipEmpty());
    uint64_t soft = 0;
    if (fields.size() >= 4 && absl::SimpleAtoi(fields[3], &soft)) return soft;
  }
  return 0;
}

// Debian's default soft limit (1024) would run out before --max-connections' 1000 connections:
// evlogd raises it to the hard limit, and says so.
TEST(EvlogdProcessTest, RaisesItsOpenFilesLimitToTheHardLimit) {
  rlimit original{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &original), 0);
  if (original.rlim_max != RLIM_INFINITY && original.rlim_max <= 256) {
    GTEST_SKIP() << "the hard limit (" << original.rlim_max << ") leaves nothing to raise";
  }
  // evlogd inherits the lowered soft limit; this process gets its own back at once.
  rlimit lowered = original;
  lowered.rlim_cur = 256;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lowered), 0);
  auto server = ServerProcess::Start();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &original), 0);
  ASSERT_TRUE(server.ok()) << server.status();
  const uint64_t expected =
      original.rlim_max == RLIM_INFINITY ? uint64_t{1} << 20 : original.rlim_max;
  EXPECT_EQ(OpenFilesSoftLimit((*server)->pid()), expected);
  EXPECT_THAT((*server)->LogTail(),
              HasSubstr(absl::StrCat("open files limit raised from 256 to ", expected)));
}

// Where even the hard limit cannot hold the connection cap and some files, evlogd starts but
// says what to change.
TEST(EvlogdProcessTest, WarnsWhenTheOpenFilesLimitCannotHoldTheConnectionCap) {
  rlimit limit{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
  // The limit evlogd will have: the hard one, or 2^20 if that is unlimited. A connection cap
  // of that many leaves no descriptor for files.
  const uint64_t raised = limit.rlim_max == RLIM_INFINITY ? uint64_t{1} << 20 : limit.rlim_max;
  const uint64_t cap = std::min<uint64_t>(raised, std::numeric_limits<int32_t>::max());
  ServerProcessOptions options;
  options.extra_flags = {absl::StrCat("--max-connections=", cap)};
  auto server = ServerProcess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT((*server)->LogTail(),
              HasSubstr(absl::StrCat("leaves fewer than 1024 descriptors for files beyond "
                                     "--max-connections=",
                                     cap)));
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
