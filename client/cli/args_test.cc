#include "client/cli/args.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evlog::cli {
namespace {

using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixMillis(1700000000000);

absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
  return ParseCommandLine(args, kNow);
}

// Expects a usage error whose message mentions `needle`.
void ExpectUsageError(std::vector<std::string> args, const std::string& needle) {
  absl::StatusOr<Invocation> inv = Parse(args);
  ASSERT_FALSE(inv.ok()) << "parsed: " << ::testing::PrintToString(args);
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument) << inv.status();
  EXPECT_THAT(std::string(inv.status().message()), HasSubstr(needle));
  EXPECT_THAT(std::string(inv.status().message()), HasSubstr("--help"));
}

TEST(ParseCommandLineTest, DefaultServerIsLoopback7070) {
  auto inv = Parse({"topic", "list"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kTopicList);
  EXPECT_EQ(inv->server, "127.0.0.1:7070");
  EXPECT_FALSE(inv->json);
}

TEST(ParseCommandLineTest, ServerBeforeOrAfterTheCommandAndBothValueForms) {
  for (const auto& args :
       std::vector<std::vector<std::string>>{{"--server=h:1", "topic", "list"},
                                             {"--server", "h:1", "topic", "list"},
                                             {"topic", "list", "--server=h:1"}}) {
    auto inv = Parse(args);
    ASSERT_TRUE(inv.ok()) << inv.status();
    EXPECT_EQ(inv->server, "h:1");
  }
}

TEST(ParseCommandLineTest, TopicCreateWithAllFlags) {
  auto inv = Parse({"topic", "create", "orders", "--partitions=4", "--retention-ms=60000",
                    "--retention-bytes", "1048576"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kTopicCreate);
  EXPECT_EQ(inv->topic, "orders");
  EXPECT_EQ(inv->topic_create.partitions, 4);
  EXPECT_EQ(inv->topic_create.retention_ms, 60000);
  EXPECT_EQ(inv->topic_create.retention_bytes, 1048576);
}

TEST(ParseCommandLineTest, TopicCreateDefaults) {
  auto inv = Parse({"topic", "create", "t"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->topic_create.partitions, 1);
  EXPECT_EQ(inv->topic_create.retention_ms, -1);
  EXPECT_EQ(inv->topic_create.retention_bytes, -1);
}

TEST(ParseCommandLineTest, DescribeDeleteAndJson) {
  auto d = Parse({"topic", "describe", "t", "--json"});
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->command, Command::kTopicDescribe);
  EXPECT_TRUE(d->json);
  auto del = Parse({"topic", "delete", "t"});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->command, Command::kTopicDelete);
  EXPECT_EQ(del->topic, "t");
}

TEST(ParseCommandLineTest, Produce) {
  auto inv = Parse({"produce", "t", "--key=user-1", "--partition=2"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kProduce);
  EXPECT_EQ(inv->produce.key, "user-1");
  EXPECT_EQ(inv->produce.partition, 2);
  auto plain = Parse({"produce", "t"});
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->produce.key.has_value());
  EXPECT_FALSE(plain->produce.partition.has_value());
  auto empty_key = Parse({"produce", "t", "--key="});
  ASSERT_TRUE(empty_key.ok());
  EXPECT_EQ(empty_key->produce.key, "");
}

TEST(ParseCommandLineTest, ReplayFromOffsetWithBounds) {
  auto inv = Parse(
      {"replay", "t", "--from-offset=5", "--partition=1", "--to-offset=9", "--max=3", "--follow"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kReplay);
  EXPECT_EQ(inv->replay.start, StartKind::kOffset);
  EXPECT_EQ(inv->replay.from_offset, 5);
  EXPECT_EQ(inv->replay.partition, 1);
  EXPECT_EQ(inv->replay.to_offset, 9);
  EXPECT_EQ(inv->replay.max, 3);
  EXPECT_TRUE(inv->replay.follow);
}

TEST(ParseCommandLineTest, ReplayFromBeginning) {
  auto inv = Parse({"replay", "t", "--from-beginning"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->replay.start, StartKind::kBeginning);
  EXPECT_FALSE(inv->replay.partition.has_value());
  EXPECT_FALSE(inv->replay.follow);
}

TEST(ParseCommandLineTest, ReplayFromTimeInEveryForm) {
  auto ms = Parse({"replay", "t", "--from-time=1700000000123"});
  ASSERT_TRUE(ms.ok()) << ms.status();
  EXPECT_EQ(ms->replay.start, StartKind::kTime);
  EXPECT_EQ(ms->replay.from_time_ms, 1700000000123);
  auto rfc = Parse({"replay", "t", "--from-time=2023-11-14T22:13:20.5Z"});
  ASSERT_TRUE(rfc.ok()) << rfc.status();
  EXPECT_EQ(rfc->replay.from_time_ms, 1700000000500);
  auto offset = Parse({"replay", "t", "--from-time=2023-11-15T00:13:20+02:00"});
  ASSERT_TRUE(offset.ok()) << offset.status();
  EXPECT_EQ(offset->replay.from_time_ms, 1700000000000);
  auto ago = Parse({"replay", "t", "--from-time=-1m30s"});
  ASSERT_TRUE(ago.ok()) << ago.status();
  EXPECT_EQ(ago->replay.from_time_ms, 1700000000000 - 90000);
}

TEST(ParseCommandLineTest, Health) {
  auto inv = Parse({"health"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kHealth);
  EXPECT_EQ(inv->health_service, "");
  auto svc = Parse({"health", "--service=evlog.v1.ProducerService"});
  ASSERT_TRUE(svc.ok());
  EXPECT_EQ(svc->health_service, "evlog.v1.ProducerService");
}

TEST(ParseCommandLineTest, TimeoutFlag) {
  auto inv = Parse({"--timeout=2s", "topic", "list"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->timeout, absl::Seconds(2));
  ExpectUsageError({"--timeout=soon", "topic", "list"}, "--timeout");
  ExpectUsageError({"--timeout=-1s", "topic", "list"}, "--timeout");
}

TEST(ParseCommandLineTest, DoubleDashEndsFlags) {
  auto inv = Parse({"topic", "describe", "--", "t"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->topic, "t");
}

TEST(HelpTest, ToolHelpInEveryForm) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--help"}, {"-h"}, {"help"}, {"--server=x:1", "--help"}}) {
    auto inv = Parse(args);
    ASSERT_TRUE(inv.ok()) << inv.status();
    EXPECT_EQ(inv->command, Command::kHelp);
    EXPECT_THAT(inv->help_text, HasSubstr("Usage: evlog"));
    EXPECT_THAT(inv->help_text, HasSubstr("replay TOPIC"));
  }
}

TEST(HelpTest, EveryCommandHasItsOwnHelp) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"topic", "create", "--help"}, "Usage: evlog topic create"},
      {{"topic", "list", "--help"}, "Usage: evlog topic list"},
      {{"topic", "describe", "-h"}, "Usage: evlog topic describe"},
      {{"topic", "delete", "--help"}, "Usage: evlog topic delete"},
      {{"topic", "--help"}, "Usage: evlog topic"},
      {{"produce", "--help"}, "Usage: evlog produce"},
      {{"replay", "--help"}, "Usage: evlog replay"},
      {{"health", "--help"}, "Usage: evlog health"},
      {{"help", "replay"}, "Usage: evlog replay"},
      {{"help", "topic", "create"}, "Usage: evlog topic create"},
      // --help wins over otherwise incomplete or wrong arguments.
      {{"replay", "--help", "--from-offset=x"}, "Usage: evlog replay"},
      {{"produce", "--help"}, "--server"},
  };
  for (const auto& [args, needle] : cases) {
    auto inv = Parse(args);
    ASSERT_TRUE(inv.ok()) << ::testing::PrintToString(args) << ": " << inv.status();
    EXPECT_EQ(inv->command, Command::kHelp);
    EXPECT_THAT(inv->help_text, HasSubstr(needle)) << ::testing::PrintToString(args);
  }
}

TEST(UsageErrorTest, CommandLevel) {
  ExpectUsageError({}, "no command");
  ExpectUsageError({"frobnicate"}, "unknown command");
  ExpectUsageError({"topic"}, "subcommand");
  ExpectUsageError({"topic", "rename", "a"}, "unknown command");
  ExpectUsageError({"--verbose", "topic", "list"}, "unknown flag --verbose");
  ExpectUsageError({"--server=", "topic", "list"}, "--server");
  ExpectUsageError({"--server"}, "needs a value");
}

TEST(UsageErrorTest, PositionalsAndFlags) {
  ExpectUsageError({"topic", "create"}, "needs NAME");
  ExpectUsageError({"topic", "create", "a", "b"}, "unexpected argument \"b\"");
  ExpectUsageError({"topic", "create", "bad/name"}, "not a valid topic name");
  ExpectUsageError({"topic", "create", std::string(250, 'a')}, "not a valid topic name");
  ExpectUsageError({"topic", "create", "t", "--partitions=0"}, "--partitions=0");
  ExpectUsageError({"topic", "create", "t", "--partitions=x"}, "--partitions=x");
  ExpectUsageError({"topic", "create", "t", "--retention-ms=-2"}, "--retention-ms");
  ExpectUsageError({"topic", "create", "t", "--partitions"}, "needs a value");
  ExpectUsageError({"topic", "list", "--json=yes"}, "takes no value");
  ExpectUsageError({"topic", "list", "extra"}, "unexpected argument");
  ExpectUsageError({"topic", "describe"}, "needs NAME");
  ExpectUsageError({"topic", "delete"}, "needs NAME");
  ExpectUsageError({"produce"}, "needs TOPIC");
  ExpectUsageError({"produce", "t", "--partition=-1"}, "--partition");
  ExpectUsageError({"produce", "t", "--follow"}, "unknown flag --follow");
  ExpectUsageError({"produce", "t", "--key=a", "--key=b"}, "given twice");
}

TEST(UsageErrorTest, Replay) {
  ExpectUsageError({"replay", "t"}, "exactly one of");
  ExpectUsageError({"replay", "t", "--from-offset=1", "--from-beginning"}, "exactly one of");
  ExpectUsageError({"replay", "t", "--from-offset=-1"}, "--from-offset");
  ExpectUsageError({"replay", "t", "--from-time=yesterday"}, "--from-time=yesterday");
  ExpectUsageError({"replay", "t", "--from-beginning", "--max=0"}, "--max");
  ExpectUsageError({"replay", "t", "--from-offset=5", "--to-offset=4"}, "below --from-offset");
  ExpectUsageError({"replay", "t", "--from-beginning", "--partition=p"}, "--partition");
  ExpectUsageError({"replay", "--from-beginning"}, "needs TOPIC");
}

TEST(UsageErrorTest, LaterCommandsAreNamedAsNotYetAvailable) {
  auto inv = Parse({"consume", "t", "--group=g"});
  ASSERT_FALSE(inv.ok());
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(inv.status().message()), HasSubstr("consume"));
}

TEST(ParseTimeMsTest, RejectsWhatIsNotATime) {
  EXPECT_FALSE(ParseTimeMs("", kNow).ok());
  EXPECT_FALSE(ParseTimeMs("-5", kNow).ok());  // a duration needs a unit
  EXPECT_FALSE(ParseTimeMs("2024-13-01T00:00:00Z", kNow).ok());
  EXPECT_FALSE(ParseTimeMs("12abc", kNow).ok());
}

}  // namespace
}  // namespace evlog::cli
