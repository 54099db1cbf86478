// Integration tests of the `evlog` binary against a real evlogd (started through the test
// harness on 127.0.0.1 with a free port and a temporary data directory). They check the
// command-line contract of DESIGN.md: output formats, exit statuses and error lines.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/testing/child_process.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/server_process.h"

extern char** environ;

namespace evlog::cli {
namespace {

using evlog::testing::CommandResult;
using evlog::testing::ServerProcess;
using evlog::testing::ServerProcessOptions;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  return lines;
}

// A running `evlog` whose stdout is read line by line as it comes (for --follow).
class Child {
 public:
  // With `with_stdin`, the child's stdin is a pipe fed by WriteStdin; else /dev/null.
  explicit Child(const std::vector<std::string>& argv, bool with_stdin = false) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    int in[2] = {-1, -1};
    if (with_stdin && pipe2(in, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    if (with_stdin) {
      posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    } else {
      posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    out_fd_ = fds[0];
    if (with_stdin) {
      close(in[0]);
      in_fd_ = in[1];
    }
  }

  void WriteStdin(const std::string& data) {
    ASSERT_EQ(write(in_fd_, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  }
  void CloseStdin() {
    close(in_fd_);
    in_fd_ = -1;
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) close(out_fd_);
    if (in_fd_ >= 0) close(in_fd_);
  }

  // Reads stdout until it holds `n` lines in total or `deadline` passes; returns all lines.
  std::vector<std::string> ReadLines(size_t n, absl::Time deadline) {
    while (Lines(out_).size() < n) {
      const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
      if (ms <= 0) break;
      pollfd p{out_fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(ms)) <= 0) continue;
      char buf[4096];
      const ssize_t got = read(out_fd_, buf, sizeof(buf));
      if (got <= 0) break;
      out_.append(buf, got);
    }
    return Lines(out_);
  }

  // Waits for the exit status until `deadline`; -1 if still running then.
  int Wait(absl::Time deadline) {
    while (absl::Now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      absl::SleepFor(absl::Milliseconds(10));  // polling, not a timing assumption
    }
    return -1;
  }

  void Signal(int sig) { kill(pid_, sig); }
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int in_fd_ = -1;
  std::string out_;
};

class CliTest : public ::testing::Test {
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

  void SetUp() override { ASSERT_NE(server_, nullptr) << "evlogd did not start"; }

  // Runs `evlog --server=<test server> args...` with `input` on stdin.
  static CommandResult Evlog(std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv = {EVLOG_CLI_PATH, "--server=" + server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto result = evlog::testing::RunCommand(argv, input, absl::Seconds(60));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }

  static std::vector<std::string> FollowArgv(std::vector<std::string> args) {
    std::vector<std::string> argv = {EVLOG_CLI_PATH, "--server=" + server_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  // Creates `topic` with `partitions` partitions, asserting success.
  static void CreateTopic(const std::string& topic, int partitions = 1) {
    CommandResult r = Evlog({"topic", "create", topic, absl::StrCat("--partitions=", partitions)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  // Produces `lines` (each followed by a newline), asserting success.
  static void Produce(const std::string& topic, const std::vector<std::string>& lines,
                      std::vector<std::string> flags = {}) {
    std::string input;
    for (const std::string& l : lines) absl::StrAppend(&input, l, "\n");
    std::vector<std::string> args = {"produce", topic};
    args.insert(args.end(), flags.begin(), flags.end());
    CommandResult r = Evlog(args, input);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.err, absl::StrCat("produced ", lines.size(), " events\n"));
  }

  // The parsed JSON lines of a successful replay.
  static std::vector<nlohmann::json> Replay(std::vector<std::string> args) {
    CommandResult r = Evlog(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<nlohmann::json> out;
    for (const std::string& line : Lines(r.out)) out.push_back(nlohmann::json::parse(line));
    return out;
  }

  static std::vector<std::string> Values(const std::vector<nlohmann::json>& records) {
    std::vector<std::string> values;
    for (const auto& r : records) values.push_back(r["value"]);
    return values;
  }

  static ServerProcess* server_;
};

ServerProcess* CliTest::server_ = nullptr;

TEST_F(CliTest, TopicCreateListDescribeDelete) {
  CommandResult created = Evlog({"topic", "create", "life", "--partitions=3",
                                 "--retention-ms=3600000", "--retention-bytes=1000000"});
  ASSERT_EQ(created.exit_code, 0) << created.err;
  EXPECT_EQ(created.out, "created topic life with 3 partitions\n");

  CommandResult list = Evlog({"topic", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(Lines(list.out), ::testing::Contains("life"));
  CommandResult list_json = Evlog({"topic", "list", "--json"});
  ASSERT_EQ(list_json.exit_code, 0) << list_json.err;
  EXPECT_THAT(nlohmann::json::parse(list_json.out).get<std::vector<std::string>>(),
              ::testing::Contains("life"));

  CommandResult describe = Evlog({"topic", "describe", "life"});
  ASSERT_EQ(describe.exit_code, 0) << describe.err;
  EXPECT_THAT(describe.out, HasSubstr("topic:            life"));
  EXPECT_THAT(describe.out, HasSubstr("partitions:       3"));
  EXPECT_THAT(describe.out, HasSubstr("3600000 ms"));
  EXPECT_THAT(describe.out, HasSubstr("PARTITION"));
  auto d = nlohmann::json::parse(Evlog({"topic", "describe", "life", "--json"}).out);
  EXPECT_EQ(d["name"], "life");
  EXPECT_EQ(d["partitions"], 3);
  EXPECT_EQ(d["retention_ms"], 3600000);
  EXPECT_EQ(d["retention_bytes"], 1000000);
  ASSERT_EQ(d["partition_info"].size(), 3u);
  EXPECT_EQ(d["partition_info"][2]["end_offset"], 0);

  CommandResult deleted = Evlog({"topic", "delete", "life"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted topic life\n");
  CommandResult gone = Evlog({"topic", "describe", "life"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, StartsWith("evlog: NOT_FOUND: "));
  EXPECT_THAT(Lines(Evlog({"topic", "list"}).out), ::testing::Not(::testing::Contains("life")));
}

TEST_F(CliTest, ProduceThenReplayFromOffsetPrintsTheContractsJsonLines) {
  CreateTopic("by-offset");
  Produce("by-offset", {"a", "b", "c"}, {"--key=k"});
  CommandResult r = Evlog({"replay", "by-offset", "--from-offset=1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  // Keys in the contract's order.
  EXPECT_THAT(lines[0], ::testing::MatchesRegex(
                            R"(\{"topic":"by-offset","partition":0,"offset":1,"timestamp_ms":)"
                            R"([0-9]+,"key":"k","value":"b","headers":\{\}\})"));
  EXPECT_THAT(lines[1], HasSubstr(R"("offset":2,)"));
  EXPECT_THAT(lines[1], HasSubstr(R"("value":"c")"));
}

TEST_F(CliTest, ProduceCountsALastLineWithoutNewlineAndAcceptsEmptyInput) {
  CreateTopic("last-line");
  CommandResult r = Evlog({"produce", "last-line"}, "x\ny");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "produced 2 events\n");
  CommandResult empty = Evlog({"produce", "last-line"}, "");
  ASSERT_EQ(empty.exit_code, 0) << empty.err;
  EXPECT_EQ(empty.err, "produced 0 events\n");
  EXPECT_THAT(Values(Replay({"replay", "last-line", "--from-beginning"})),
              ::testing::ElementsAre("x", "y"));
}

TEST_F(CliTest, NonUtf8ValuesReplayAsBase64) {
  CreateTopic("binary");
  CommandResult r = Evlog({"produce", "binary"}, std::string("ok\n\xff\xfe\n", 6));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto records = Replay({"replay", "binary", "--from-beginning"});
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["value"], "ok");
  EXPECT_FALSE(records[1].contains("value"));
  EXPECT_EQ(records[1]["value_b64"], "//4=");
}

TEST_F(CliTest, ReplayFromBeginningReadsEveryPartitionInOrder) {
  CreateTopic("all-parts", 3);
  Produce("all-parts", {"p2-a", "p2-b"}, {"--partition=2"});
  Produce("all-parts", {"p0-a"}, {"--partition=0"});
  Produce("all-parts", {"p1-a", "p1-b", "p1-c"}, {"--partition=1"});
  auto records = Replay({"replay", "all-parts", "--from-beginning"});
  EXPECT_THAT(Values(records),
              ::testing::ElementsAre("p0-a", "p1-a", "p1-b", "p1-c", "p2-a", "p2-b"));
  auto only1 = Replay({"replay", "all-parts", "--from-beginning", "--partition=1"});
  EXPECT_THAT(Values(only1), ::testing::ElementsAre("p1-a", "p1-b", "p1-c"));
  for (const auto& r : only1) EXPECT_EQ(r["partition"], 1);
  // An offset applies to every partition: offset 1 exists in partitions 1 and 2, and 1 is the
  // end of partition 0 (nothing to print there, not an error).
  EXPECT_THAT(Values(Replay({"replay", "all-parts", "--from-offset=1"})),
              ::testing::ElementsAre("p1-b", "p1-c", "p2-b"));
}

TEST_F(CliTest, ReplayByTimeInMillisecondsAndRfc3339) {
  CreateTopic("by-time");
  Produce("by-time", {"old-1", "old-2"});
  auto old = Replay({"replay", "by-time", "--from-beginning"});
  ASSERT_EQ(old.size(), 2u);
  const int64_t boundary = old[1]["timestamp_ms"].get<int64_t>() + 1;
  // Wait (with a deadline) until the server's clock, which stamps the records, is past it.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::ToUnixMillis(absl::Now()) <= boundary + 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  Produce("by-time", {"new-1", "new-2"});
  EXPECT_THAT(Values(Replay({"replay", "by-time", absl::StrCat("--from-time=", boundary)})),
              ::testing::ElementsAre("new-1", "new-2"));
  const std::string rfc3339 =
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(boundary), absl::UTCTimeZone());
  EXPECT_THAT(Values(Replay({"replay", "by-time", "--from-time=" + rfc3339})),
              ::testing::ElementsAre("new-1", "new-2"));
  EXPECT_THAT(Values(Replay({"replay", "by-time", "--from-time=0"})),
              ::testing::ElementsAre("old-1", "old-2", "new-1", "new-2"));
  // A time after every record prints nothing.
  EXPECT_TRUE(Replay({"replay", "by-time", "--from-time=4102444800000"}).empty());
}

TEST_F(CliTest, ToOffsetIsExclusiveAndMaxLimitsTheTotal) {
  CreateTopic("bounds", 2);
  std::vector<std::string> lines;
  for (int i = 0; i < 10; ++i) lines.push_back(absl::StrCat("v", i));
  Produce("bounds", lines, {"--partition=0"});
  Produce("bounds", {"w0", "w1", "w2"}, {"--partition=1"});
  EXPECT_THAT(
      Values(Replay({"replay", "bounds", "--from-offset=2", "--to-offset=5", "--partition=0"})),
      ::testing::ElementsAre("v2", "v3", "v4"));
  EXPECT_THAT(Values(Replay({"replay", "bounds", "--from-beginning", "--max=3"})),
              ::testing::ElementsAre("v0", "v1", "v2"));
  // --max counts across partitions; --to-offset applies to each.
  EXPECT_THAT(Values(Replay({"replay", "bounds", "--from-beginning", "--to-offset=2"})),
              ::testing::ElementsAre("v0", "v1", "w0", "w1"));
  EXPECT_THAT(Values(Replay({"replay", "bounds", "--from-offset=8", "--max=3", "--partition=0"})),
              ::testing::ElementsAre("v8", "v9"));
}

TEST_F(CliTest, ReplayStopsAtTheEndOffsetAsOfItsStart) {
  CreateTopic("snapshot");
  Produce("snapshot", {"a", "b"});
  EXPECT_THAT(Values(Replay({"replay", "snapshot", "--from-beginning"})),
              ::testing::ElementsAre("a", "b"));
}

TEST_F(CliTest, FollowReceivesRecordsProducedLater) {
  CreateTopic("follow", 2);
  Produce("follow", {"before-0"}, {"--partition=0"});
  Produce("follow", {"before-1"}, {"--partition=1"});
  Child follower(FollowArgv({"replay", "follow", "--from-beginning", "--follow", "--max=4"}));
  ASSERT_TRUE(follower.started());
  // Caught up: both existing records are printed while the command keeps running.
  std::vector<std::string> lines = follower.ReadLines(2, absl::Now() + absl::Seconds(30));
  ASSERT_EQ(lines.size(), 2u);
  Produce("follow", {"after-1"}, {"--partition=1"});
  Produce("follow", {"after-0"}, {"--partition=0"});
  lines = follower.ReadLines(4, absl::Now() + absl::Seconds(30));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_THAT(lines[2] + lines[3], HasSubstr("after-1"));
  EXPECT_THAT(lines[2] + lines[3], HasSubstr("after-0"));
  // --max=4 reached: it exits by itself, successfully.
  EXPECT_EQ(follower.Wait(absl::Now() + absl::Seconds(30)), 0);
}

TEST_F(CliTest, FollowEndsAtToOffsetAndOnSigterm) {
  CreateTopic("follow-end");
  Child bounded(
      FollowArgv({"replay", "follow-end", "--from-offset=0", "--to-offset=2", "--follow"}));
  ASSERT_TRUE(bounded.started());
  Child open(FollowArgv({"replay", "follow-end", "--from-offset=0", "--follow"}));
  ASSERT_TRUE(open.started());
  Produce("follow-end", {"one", "two", "three"});
  EXPECT_EQ(bounded.ReadLines(3, absl::Now() + absl::Seconds(30)).size(), 2u);
  EXPECT_EQ(bounded.Wait(absl::Now() + absl::Seconds(30)), 0);
  ASSERT_EQ(open.ReadLines(3, absl::Now() + absl::Seconds(30)).size(), 3u);
  open.Signal(SIGTERM);
  EXPECT_EQ(open.Wait(absl::Now() + absl::Seconds(30)), 0);
}

TEST_F(CliTest, ProduceSendsLinesFromASlowPipeBeforeItCloses) {
  CreateTopic("streaming");
  Child follower(FollowArgv({"replay", "streaming", "--from-offset=0", "--follow", "--max=2"}));
  Child producer(FollowArgv({"produce", "streaming"}), /*with_stdin=*/true);
  ASSERT_TRUE(follower.started() && producer.started());
  // Like `tail -f log | evlog produce`: each line is stored while stdin stays open.
  producer.WriteStdin("first\n");
  EXPECT_EQ(follower.ReadLines(1, absl::Now() + absl::Seconds(30)).size(), 1u);
  producer.WriteStdin("second\n");
  EXPECT_EQ(follower.ReadLines(2, absl::Now() + absl::Seconds(30)).size(), 2u);
  producer.CloseStdin();
  EXPECT_EQ(producer.Wait(absl::Now() + absl::Seconds(30)), 0);
  EXPECT_EQ(follower.Wait(absl::Now() + absl::Seconds(30)), 0);
}

TEST_F(CliTest, ManyLinesFromAPipeArriveCompleteAndInOrder) {
  // 200k lines: enough for many batches in flight at once, quick enough for every run.
  CreateTopic("bulk");
  constexpr int kLines = 200000;
  std::string input;
  input.reserve(kLines * 12);
  for (int i = 0; i < kLines; ++i) absl::StrAppend(&input, i, "\n");
  CommandResult produced = Evlog({"produce", "bulk"}, input);
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
  ASSERT_EQ(produced.err, absl::StrCat("produced ", kLines, " events\n"));
  CommandResult replayed = Evlog({"replay", "bulk", "--from-beginning"});
  ASSERT_EQ(replayed.exit_code, 0) << replayed.err;
  std::vector<std::string> lines = Lines(replayed.out);
  ASSERT_EQ(lines.size(), static_cast<size_t>(kLines));
  int wrong = 0;
  for (int i = 0; i < kLines; ++i) {
    const auto j = nlohmann::json::parse(lines[i]);
    if (j["offset"] != i || j["value"] != std::to_string(i)) {
      if (++wrong <= 5) ADD_FAILURE() << "at offset " << i << ": " << lines[i];
    }
  }
  EXPECT_EQ(wrong, 0);
}

TEST_F(CliTest, ServerErrorsExitOneWithTheStatusName) {
  CreateTopic("errors", 2);
  Produce("errors", {"a"}, {"--partition=0"});
  struct Case {
    std::vector<std::string> args;
    std::string prefix;
  };
  const std::vector<Case> cases = {
      {{"topic", "create", "errors"}, "evlog: ALREADY_EXISTS: "},
      {{"topic", "create", "huge", "--partitions=100000"}, "evlog: INVALID_ARGUMENT: "},
      {{"topic", "describe", "missing"}, "evlog: NOT_FOUND: "},
      {{"topic", "delete", "missing"}, "evlog: NOT_FOUND: "},
      {{"produce", "missing"}, "evlog: NOT_FOUND: "},
      {{"produce", "errors", "--partition=2"}, "evlog: OUT_OF_RANGE: "},
      {{"replay", "missing", "--from-beginning"}, "evlog: NOT_FOUND: "},
      {{"replay", "errors", "--from-offset=2"}, "evlog: OUT_OF_RANGE: "},
      {{"replay", "errors", "--from-offset=2", "--partition=0"}, "evlog: OUT_OF_RANGE: "},
      {{"replay", "errors", "--from-beginning", "--partition=5"}, "evlog: OUT_OF_RANGE: "},
  };
  for (const Case& c : cases) {
    CommandResult r = Evlog(c.args, "x\n");
    EXPECT_EQ(r.exit_code, 1) << ::testing::PrintToString(c.args) << ": " << r.err;
    EXPECT_THAT(r.err, StartsWith(c.prefix)) << ::testing::PrintToString(c.args);
    EXPECT_EQ(r.out, "") << ::testing::PrintToString(c.args);
  }
  // The error says what is valid.
  EXPECT_THAT(Evlog({"replay", "errors", "--from-offset=2", "--partition=0"}).err,
              HasSubstr("0..1"));
}

TEST_F(CliTest, ARejectedBatchFailsProduceWithTheServersReason) {
  CreateTopic("too-big");
  // One line over the server's record limit (1 MiB by default) between two good ones.
  const std::string input = "small\n" + std::string(1536 * 1024, 'x') + "\nsmall\n";
  CommandResult r = Evlog({"produce", "too-big"}, input);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, StartsWith("evlog: INVALID_ARGUMENT: ")) << r.err;
  EXPECT_THAT(r.err, HasSubstr("events were acknowledged")) << r.err;
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("produced")));
}

TEST_F(CliTest, UnreachableServerIsUnavailable) {
  // Port 1 on loopback: nothing listens there (connection refused).
  auto r = evlog::testing::RunCommand(
      {EVLOG_CLI_PATH, "--server=127.0.0.1:1", "--timeout=10s", "topic", "list"}, "",
      absl::Seconds(60));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_THAT(r->err, StartsWith("evlog: UNAVAILABLE: cannot reach evlogd at 127.0.0.1:1; "));
}

// A server that accepts connections but never answers (SIGSTOP, like a blackholed path):
// every command ends at its deadline with DEADLINE_EXCEEDED instead of hanging.
TEST(CliDeadlineTest, StoppedServerEndsAtTheDeadline) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string flag = "--server=" + (*server)->address();
  auto created = evlog::testing::RunCommand({EVLOG_CLI_PATH, flag, "topic", "create", "t"});
  ASSERT_TRUE(created.ok() && created->exit_code == 0);
  ASSERT_EQ(kill((*server)->pid(), SIGSTOP), 0);
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"topic", "list"},
                                             {"replay", "t", "--from-beginning", "--follow"},
                                             {"produce", "t"},
                                             {"health"},
                                             {"consume", "t", "--group=g"},
                                             {"group", "list"}}) {
    std::vector<std::string> argv = {EVLOG_CLI_PATH, flag, "--timeout=2s"};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = evlog::testing::RunCommand(argv, "x\n", absl::Seconds(30));
    ASSERT_TRUE(r.ok()) << r.status() << " for " << ::testing::PrintToString(args);
    EXPECT_EQ(r->exit_code, 1) << ::testing::PrintToString(args);
    EXPECT_THAT(r->err, StartsWith("evlog: DEADLINE_EXCEEDED: ")) << r->err;
  }
  kill((*server)->pid(), SIGCONT);
}

TEST_F(CliTest, EveryUsageErrorExitsTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"bogus"},
      {"topic"},
      {"topic", "rename", "x"},
      {"topic", "create"},
      {"topic", "create", "bad name"},
      {"topic", "create", "t", "--partitions=0"},
      {"topic", "create", "t", "--partitions=many"},
      {"topic", "create", "t", "--retention-ms=-5"},
      {"topic", "create", "t", "--retention-bytes=x"},
      {"topic", "create", "t", "extra"},
      {"topic", "list", "--json=1"},
      {"topic", "describe"},
      {"topic", "delete"},
      {"produce"},
      {"produce", "t", "--partition=-1"},
      {"produce", "t", "--nope"},
      {"replay", "t"},
      {"replay", "t", "--from-beginning", "--from-offset=0"},
      {"replay", "t", "--from-offset=x"},
      {"replay", "t", "--from-time=last tuesday"},
      {"replay", "t", "--from-beginning", "--max=0"},
      {"replay", "t", "--from-offset=3", "--to-offset=2"},
      {"replay", "t", "--from-beginning", "--partition"},
      {"--server", "topic"},
      {"--unknown", "topic", "list"},
      {"--timeout=forever", "topic", "list"},
      {"consume", "t"},
      {"consume", "t", "--group=g", "--max=0"},
      {"consume", "t", "--group=g", "--auto-offset-reset=never"},
      {"group"},
      {"group", "describe"},
      {"group", "reset", "g", "--topic=t"},
      {"group", "reset", "g", "--to-latest"},
      {"group", "reset", "g", "--topic=t", "--to-latest", "--to-earliest"},
      {"group", "delete", "g", "extra"},
  };
  for (const auto& args : cases) {
    CommandResult r = Evlog(args);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_THAT(r.err, StartsWith("evlog: INVALID_ARGUMENT: ")) << ::testing::PrintToString(args);
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(CliTest, HelpExitsZeroForTheToolAndEachCommand) {
  const std::vector<std::vector<std::string>> cases = {
      {"--help"},
      {"help"},
      {"topic", "--help"},
      {"topic", "create", "--help"},
      {"topic", "list", "--help"},
      {"topic", "describe", "--help"},
      {"topic", "delete", "--help"},
      {"produce", "--help"},
      {"replay", "--help"},
      {"health", "--help"},
      {"consume", "--help"},
      {"group", "--help"},
      {"group", "list", "--help"},
      {"group", "describe", "--help"},
      {"group", "reset", "--help"},
      {"group", "delete", "--help"},
  };
  for (const auto& args : cases) {
    CommandResult r = Evlog(args);
    EXPECT_EQ(r.exit_code, 0) << ::testing::PrintToString(args);
    EXPECT_THAT(r.out, HasSubstr("Usage: evlog")) << ::testing::PrintToString(args);
  }
}

TEST_F(CliTest, HealthReportsServing) {
  CommandResult r = Evlog({"health"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "SERVING\n");
}

// --- Consumer groups: consume and group list|describe|reset|delete. ---

// (partition, offset) of each printed record, in print order.
std::vector<std::pair<int, int64_t>> Positions(const std::vector<nlohmann::json>& records) {
  std::vector<std::pair<int, int64_t>> out;
  for (const auto& r : records)
    out.emplace_back(r["partition"].get<int>(), r["offset"].get<int64_t>());
  return out;
}

std::set<std::pair<int, int64_t>> Range(int partition, int64_t from, int64_t to) {
  std::set<std::pair<int, int64_t>> out;
  for (int64_t o = from; o < to; ++o) out.insert({partition, o});
  return out;
}

class GroupCliTest : public CliTest {
 protected:
  // `consume` that should print exactly `n` records: --max stops it then; the idle timeout
  // only bounds a failure.
  static std::vector<nlohmann::json> ConsumeN(const std::string& topic, const std::string& group,
                                              int n) {
    auto records = Replay({"consume", topic, "--group=" + group, absl::StrCat("--max=", n),
                           "--idle-timeout-ms=20000"});
    EXPECT_EQ(records.size(), static_cast<size_t>(n));
    return records;
  }
  // `consume` that should print nothing: it exits after a short idle time.
  static void ExpectNothingLeft(const std::string& topic, const std::string& group) {
    EXPECT_THAT(Replay({"consume", topic, "--group=" + group, "--idle-timeout-ms=300"}),
                ::testing::IsEmpty());
  }
  static nlohmann::json Describe(const std::string& group) {
    CommandResult r = Evlog({"group", "describe", group, "--json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out, nullptr, false);
  }
  static void Reset(const std::string& group, std::vector<std::string> flags) {
    std::vector<std::string> args = {"group", "reset", group};
    args.insert(args.end(), flags.begin(), flags.end());
    CommandResult r = Evlog(args);
    ASSERT_EQ(r.exit_code, 0) << ::testing::PrintToString(args) << ": " << r.err;
    EXPECT_THAT(r.out, HasSubstr("NEW OFFSET"));
  }
};

TEST_F(GroupCliTest, ConsumePrintsTheContractsJsonLinesCommitsThemAndTheNextRunResumes) {
  CreateTopic("orders-c", 3);
  for (int p = 0; p < 3; ++p) {
    Produce("orders-c",
            {absl::StrCat("p", p, "-0"), absl::StrCat("p", p, "-1"), absl::StrCat("p", p, "-2"),
             absl::StrCat("p", p, "-3")},
            {absl::StrCat("--partition=", p)});
  }
  CommandResult first = Evlog({"consume", "orders-c", "--group=billing", "--max=5"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(first.err, "");
  std::vector<std::string> lines = Lines(first.out);
  ASSERT_EQ(lines.size(), 5u);
  for (const std::string& line : lines) {
    EXPECT_THAT(line, ::testing::MatchesRegex(
                          R"(\{"topic":"orders-c","partition":[0-2],"offset":[0-3],"timestamp_ms":)"
                          R"([0-9]+,"key":"","value":"p[0-2]-[0-3]","headers":\{\}\})"));
  }
  std::set<std::pair<int, int64_t>> seen;
  std::vector<nlohmann::json> first_records;
  for (const std::string& line : lines) first_records.push_back(nlohmann::json::parse(line));
  for (const auto& pos : Positions(first_records)) EXPECT_TRUE(seen.insert(pos).second);

  // The next run resumes after what the first printed: together exactly everything.
  auto second = ConsumeN("orders-c", "billing", 7);
  std::map<int, int64_t> last;
  for (const auto& [p, o] : Positions(second)) {
    EXPECT_TRUE(seen.insert({p, o}).second) << p << "@" << o << " printed twice";
    if (last.contains(p)) {
      EXPECT_GT(o, last[p]) << "offset order within partition " << p;
    }
    last[p] = o;
  }
  std::set<std::pair<int, int64_t>> all;
  for (int p = 0; p < 3; ++p) {
    auto r = Range(p, 0, 4);
    all.insert(r.begin(), r.end());
  }
  EXPECT_EQ(seen, all);
  ExpectNothingLeft("orders-c", "billing");
  const nlohmann::json billing = Describe("billing");
  for (const auto& p : billing["partitions"]) {
    EXPECT_EQ(p["committed_offset"], 4);
    EXPECT_EQ(p["lag"], 0);
  }
}

TEST_F(GroupCliTest, DescribeShowsLagEndMinusWhatWasConsumedPerPartition) {
  // One partition: produce N = 10, consume M = 4, lag N - M = 6.
  CreateTopic("lag-one");
  std::vector<std::string> ten;
  for (int i = 0; i < 10; ++i) ten.push_back(absl::StrCat("v", i));
  Produce("lag-one", ten);
  ConsumeN("lag-one", "lag-one-g", 4);
  nlohmann::json d = Describe("lag-one-g");
  ASSERT_EQ(d["partitions"].size(), 1u);
  EXPECT_EQ(d["partitions"][0]["committed_offset"], 4);
  EXPECT_EQ(d["partitions"][0]["end_offset"], 10);
  EXPECT_EQ(d["partitions"][0]["lag"], 6);
  EXPECT_GT(d["partitions"][0]["commit_time_ms"].get<int64_t>(), 0);
  EXPECT_EQ(d["partitions"][0]["owner"], "") << "the consumer left";
  EXPECT_TRUE(d["members"].empty());
  CommandResult table = Evlog({"group", "describe", "lag-one-g"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("group:              lag-one-g\n"));
  EXPECT_THAT(table.out, ::testing::ContainsRegex("lag-one +0 +4 +10 +6 +- +20[0-9-]+T"));
  EXPECT_THAT(table.out, HasSubstr("total lag: 6\n"));

  // Three partitions of 5, 7 and 9 records (N = 21); consume M = 10: per partition the lag is
  // its end minus what was printed from it, and they add up to N - M = 11.
  CreateTopic("lag-three", 3);
  const std::vector<int> sizes = {5, 7, 9};
  for (int p = 0; p < 3; ++p) {
    std::vector<std::string> values;
    for (int i = 0; i < sizes[p]; ++i) values.push_back(absl::StrCat(p, "-", i));
    Produce("lag-three", values, {absl::StrCat("--partition=", p)});
  }
  std::map<int, int64_t> printed;
  for (const auto& [p, o] : Positions(ConsumeN("lag-three", "lag-three-g", 10))) {
    EXPECT_EQ(o, printed[p]) << "each partition in offset order from 0";
    ++printed[p];
  }
  d = Describe("lag-three-g");
  ASSERT_EQ(d["partitions"].size(), 3u);
  int64_t total = 0;
  for (const auto& part : d["partitions"]) {
    const int p = part["partition"];
    EXPECT_EQ(part["end_offset"], sizes[p]);
    EXPECT_EQ(part["lag"], sizes[p] - printed[p]) << "partition " << p;
    if (printed[p] > 0) {
      EXPECT_EQ(part["committed_offset"], printed[p]) << "partition " << p;
    }
    total += part["lag"].get<int64_t>();
  }
  EXPECT_EQ(total, 21 - 10);
}

TEST_F(GroupCliTest, TwoGroupsOnOneTopicEachSeeEverythingIndependently) {
  CreateTopic("fanout", 4);
  for (int p = 0; p < 4; ++p) {
    std::vector<std::string> values;
    for (int i = 0; i < 25; ++i) values.push_back(absl::StrCat(p, "-", i));
    Produce("fanout", values, {absl::StrCat("--partition=", p)});
  }
  std::vector<std::unique_ptr<evlog::testing::ChildProcess>> runs;
  for (const std::string group : {"fan-a", "fan-b"}) {
    auto child = evlog::testing::ChildProcess::Start(FollowArgv(
        {"consume", "fanout", "--group=" + group, "--max=100", "--idle-timeout-ms=20000"}));
    ASSERT_TRUE(child.ok()) << child.status();
    runs.push_back(*std::move(child));
  }
  std::set<std::pair<int, int64_t>> all;
  for (int p = 0; p < 4; ++p) {
    auto r = Range(p, 0, 25);
    all.insert(r.begin(), r.end());
  }
  for (auto& run : runs) {
    EXPECT_EQ(run->Wait(absl::Now() + absl::Seconds(60)), 0) << run->Stderr();
    std::vector<nlohmann::json> records;
    for (const std::string& line : run->Lines()) records.push_back(nlohmann::json::parse(line));
    auto positions = Positions(records);
    EXPECT_EQ(positions.size(), 100u);
    const std::set<std::pair<int, int64_t>> distinct(positions.begin(), positions.end());
    EXPECT_EQ(distinct, all);
  }
  // Each group's offsets are its own: new records go to both; consuming them in one group
  // leaves the other's lag as it was.
  Produce("fanout", {"late-1", "late-2"}, {"--partition=0"});
  EXPECT_THAT(
      Positions(ConsumeN("fanout", "fan-a", 2)),
      ::testing::ElementsAre(std::make_pair(0, int64_t{25}), std::make_pair(0, int64_t{26})));
  int64_t lag_a = 0, lag_b = 0;
  const nlohmann::json a = Describe("fan-a"), b = Describe("fan-b");
  for (const auto& p : a["partitions"]) lag_a += p["lag"].get<int64_t>();
  for (const auto& p : b["partitions"]) lag_b += p["lag"].get<int64_t>();
  EXPECT_EQ(lag_a, 0);
  EXPECT_EQ(lag_b, 2);
}

TEST_F(GroupCliTest, ResetByOffsetTimeEarliestLatestAndShiftIsWhatConsumeThenPrints) {
  CreateTopic("rs", 2);
  for (int p = 0; p < 2; ++p) {
    Produce("rs", {"old-0", "old-1", "old-2", "old-3", "old-4"}, {absl::StrCat("--partition=", p)});
  }
  int64_t boundary = 0;
  for (const auto& r : Replay({"replay", "rs", "--from-beginning"})) {
    boundary = std::max(boundary, r["timestamp_ms"].get<int64_t>() + 1);
  }
  // Wait (with a deadline) until the server's clock, which stamps the records, is past it.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (absl::ToUnixMillis(absl::Now()) <= boundary + 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  for (int p = 0; p < 2; ++p) {
    Produce("rs", {"new-5", "new-6", "new-7", "new-8", "new-9"}, {absl::StrCat("--partition=", p)});
  }
  auto both = [](int64_t from, int64_t to) {
    auto a = Range(0, from, to), b = Range(1, from, to);
    a.insert(b.begin(), b.end());
    return a;
  };
  auto set_of = [](const std::vector<nlohmann::json>& records) {
    auto p = Positions(records);
    return std::set<std::pair<int, int64_t>>(p.begin(), p.end());
  };

  EXPECT_EQ(set_of(ConsumeN("rs", "rs-g", 20)), both(0, 10));
  ExpectNothingLeft("rs", "rs-g");

  Reset("rs-g", {"--topic=rs", "--to-offset=3"});
  EXPECT_EQ(set_of(ConsumeN("rs", "rs-g", 14)), both(3, 10));
  ExpectNothingLeft("rs", "rs-g");

  Reset("rs-g", {"--topic=rs", "--to-earliest"});
  EXPECT_EQ(set_of(ConsumeN("rs", "rs-g", 20)), both(0, 10));

  Reset("rs-g", {"--topic=rs", "--to-latest"});
  ExpectNothingLeft("rs", "rs-g");

  Reset("rs-g", {"--topic=rs", "--shift-by=-2"});
  EXPECT_EQ(set_of(ConsumeN("rs", "rs-g", 4)), both(8, 10));

  Reset("rs-g", {"--topic=rs", absl::StrCat("--to-time=", boundary)});
  auto since = ConsumeN("rs", "rs-g", 10);
  EXPECT_EQ(set_of(since), both(5, 10));
  for (const auto& r : since) EXPECT_THAT(r["value"].get<std::string>(), StartsWith("new-"));
  ExpectNothingLeft("rs", "rs-g");

  // One partition only; its new offset is printed (--json for scripts).
  CommandResult one =
      Evlog({"group", "reset", "rs-g", "--topic=rs", "--to-earliest", "--partition=1", "--json"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  EXPECT_EQ(one.out, R"({"group":"rs-g","topic":"rs","offsets":[{"partition":1,"offset":0}]})"
                     "\n");
  EXPECT_EQ(set_of(ConsumeN("rs", "rs-g", 10)), Range(1, 0, 10));
  ExpectNothingLeft("rs", "rs-g");

  // Shifts are kept within the partition's offsets.
  Reset("rs-g", {"--topic=rs", "--shift-by=-1000"});
  EXPECT_EQ(set_of(ConsumeN("rs", "rs-g", 20)), both(0, 10));

  CommandResult past = Evlog({"group", "reset", "rs-g", "--topic=rs", "--to-offset=11"});
  EXPECT_EQ(past.exit_code, 1);
  EXPECT_THAT(past.err, StartsWith("evlog: OUT_OF_RANGE: "));
  CommandResult no_partition =
      Evlog({"group", "reset", "rs-g", "--topic=rs", "--to-latest", "--partition=2"});
  EXPECT_EQ(no_partition.exit_code, 1);
  EXPECT_THAT(no_partition.err, StartsWith("evlog: OUT_OF_RANGE: "));
}

TEST_F(GroupCliTest, ResetAndDeleteRefuseALiveGroupUnlessForcedAndTheMemberRejoins) {
  CreateTopic("live");
  Produce("live", {"a", "b", "c"});
  Child consumer(FollowArgv({"consume", "live", "--group=live-g", "--session-timeout-ms=3000"}));
  ASSERT_TRUE(consumer.started());
  ASSERT_EQ(consumer.ReadLines(3, absl::Now() + absl::Seconds(30)).size(), 3u);

  CommandResult refused = Evlog({"group", "reset", "live-g", "--topic=live", "--to-earliest"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, StartsWith("evlog: FAILED_PRECONDITION: "));
  CommandResult not_deleted = Evlog({"group", "delete", "live-g"});
  EXPECT_EQ(not_deleted.exit_code, 1);
  EXPECT_THAT(not_deleted.err, StartsWith("evlog: FAILED_PRECONDITION: "));
  nlohmann::json d = Describe("live-g");
  ASSERT_EQ(d["members"].size(), 1u);
  EXPECT_EQ(d["partitions"][0]["owner"], d["members"][0]["member_id"]);

  // Forced: the member is removed, joins again and prints everything from the new offset.
  CommandResult forced =
      Evlog({"group", "reset", "live-g", "--topic=live", "--to-earliest", "--force"});
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  std::vector<std::string> lines = consumer.ReadLines(6, absl::Now() + absl::Seconds(30));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_THAT(lines[3], HasSubstr(R"("offset":0,)"));
  EXPECT_THAT(lines[5], HasSubstr(R"("value":"c")"));
  consumer.Signal(SIGTERM);
  EXPECT_EQ(consumer.Wait(absl::Now() + absl::Seconds(30)), 0);

  EXPECT_THAT(Lines(Evlog({"group", "list"}).out), ::testing::Contains("live-g"));
  CommandResult deleted = Evlog({"group", "delete", "live-g"});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_EQ(deleted.out, "deleted group live-g\n");
  CommandResult gone = Evlog({"group", "describe", "live-g"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_THAT(gone.err, StartsWith("evlog: NOT_FOUND: "));
  EXPECT_THAT(Lines(Evlog({"group", "list"}).out), ::testing::Not(::testing::Contains("live-g")));
}

TEST_F(GroupCliTest, ListAndServerErrorsExitOneWithTheStatusName) {
  CreateTopic("listed");
  Produce("listed", {"x"});
  ConsumeN("listed", "listed-a", 1);
  ConsumeN("listed", "listed-b", 1);
  CommandResult list = Evlog({"group", "list"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(Lines(list.out), ::testing::IsSupersetOf({"listed-a", "listed-b"}));
  auto json = nlohmann::json::parse(Evlog({"group", "list", "--json"}).out);
  auto names = json.get<std::vector<std::string>>();
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_THAT(names, ::testing::IsSupersetOf({"listed-a", "listed-b"}));

  struct Case {
    std::vector<std::string> args;
    std::string prefix;
  };
  const std::vector<Case> cases = {
      {{"consume", "missing", "--group=g"}, "evlog: NOT_FOUND: "},
      {{"group", "describe", "no-such-group"}, "evlog: NOT_FOUND: "},
      {{"group", "delete", "no-such-group"}, "evlog: NOT_FOUND: "},
      {{"group", "reset", "listed-a", "--topic=missing", "--to-earliest"}, "evlog: NOT_FOUND: "},
  };
  for (const Case& c : cases) {
    CommandResult r = Evlog(c.args);
    EXPECT_EQ(r.exit_code, 1) << ::testing::PrintToString(c.args) << ": " << r.err;
    EXPECT_THAT(r.err, StartsWith(c.prefix)) << ::testing::PrintToString(c.args);
    EXPECT_EQ(r.out, "") << ::testing::PrintToString(c.args);
  }
}

// A committed offset that retention overtook: consume warns and resumes at the start offset.
TEST(CliRetentionTest, ConsumeWarnsWhenRetentionRemovedUnreadRecords) {
  ServerProcessOptions options;
  options.extra_flags = {"--retention-check-interval=100ms", "--segment-max-bytes=1"};
  auto server = ServerProcess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto evlog = [&](std::vector<std::string> args, const std::string& input = "") {
    std::vector<std::string> argv = {EVLOG_CLI_PATH, "--server=" + (*server)->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    auto r = evlog::testing::RunCommand(argv, input, absl::Seconds(60));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : CommandResult{};
  };
  auto start_offset = [&] {
    auto d = nlohmann::json::parse(evlog({"topic", "describe", "trim", "--json"}).out);
    return d["partition_info"][0]["start_offset"].get<int64_t>();
  };
  ASSERT_EQ(evlog({"topic", "create", "trim", "--retention-bytes=1"}).exit_code, 0);
  ASSERT_EQ(evlog({"produce", "trim"}, "a\n").exit_code, 0);
  ASSERT_EQ(evlog({"produce", "trim"}, "b\n").exit_code, 0);
  CommandResult first = evlog({"consume", "trim", "--group=slow", "--max=1"});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const int64_t committed = nlohmann::json::parse(first.out)["offset"].get<int64_t>() + 1;
  for (const char* v : {"c\n", "d\n", "e\n"}) ASSERT_EQ(evlog({"produce", "trim"}, v).exit_code, 0);
  // Wait (with a deadline) for retention to remove records past the committed offset.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (start_offset() <= committed && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_GT(start_offset(), committed);
  CommandResult r =
      evlog({"consume", "trim", "--group=slow", "--max=1", "--idle-timeout-ms=20000"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const int64_t resumed = nlohmann::json::parse(r.out)["offset"].get<int64_t>();
  EXPECT_GT(resumed, committed);
  EXPECT_EQ(r.err, absl::StrCat("evlog: warning: retention removed records of trim:0 that group "
                                "slow had not read; reading resumes at offset ",
                                resumed, ", the partition's start offset\n"));
}

}  // namespace
}  // namespace evlog::cli
