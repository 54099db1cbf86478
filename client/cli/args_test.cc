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

TEST(ParseCommandLineTest, ConsumeWithDefaults) {
  auto inv = Parse({"consume", "orders", "--group=billing"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kConsume);
  EXPECT_EQ(inv->topic, "orders");
  EXPECT_EQ(inv->consume.group, "billing");
  EXPECT_FALSE(inv->consume.max.has_value());
  EXPECT_FALSE(inv->consume.idle_timeout_ms.has_value());
  EXPECT_FALSE(inv->consume.session_timeout_ms.has_value());
  EXPECT_FALSE(inv->consume.auto_offset_reset_latest);
}

TEST(ParseCommandLineTest, ConsumeWithAllFlags) {
  auto inv = Parse({"consume", "orders", "--group", "billing", "--max=10", "--idle-timeout-ms=500",
                    "--session-timeout-ms=1500", "--auto-offset-reset=latest"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->consume.max, 10);
  EXPECT_EQ(inv->consume.idle_timeout_ms, 500);
  EXPECT_EQ(inv->consume.session_timeout_ms, 1500);
  EXPECT_TRUE(inv->consume.auto_offset_reset_latest);
}

TEST(ParseCommandLineTest, GroupListDescribeDelete) {
  auto list = Parse({"group", "list", "--json"});
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->command, Command::kGroupList);
  EXPECT_TRUE(list->json);
  auto describe = Parse({"group", "describe", "billing"});
  ASSERT_TRUE(describe.ok()) << describe.status();
  EXPECT_EQ(describe->command, Command::kGroupDescribe);
  EXPECT_EQ(describe->group, "billing");
  EXPECT_FALSE(describe->json);
  auto del = Parse({"group", "delete", "billing", "--force"});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->command, Command::kGroupDelete);
  EXPECT_EQ(del->group, "billing");
  EXPECT_TRUE(del->force);
  EXPECT_FALSE(Parse({"group", "delete", "billing"})->force);
}

TEST(ParseCommandLineTest, GroupResetEveryTarget) {
  struct Case {
    std::vector<std::string> flags;
    ResetKind kind;
    int64_t value;
  };
  const std::vector<Case> cases = {
      {{"--to-offset=17"}, ResetKind::kToOffset, 17},
      {{"--to-earliest"}, ResetKind::kToEarliest, 0},
      {{"--to-latest"}, ResetKind::kToLatest, 0},
      {{"--to-time=1600000000000"}, ResetKind::kToTime, 1600000000000},
      {{"--to-time=-1h"}, ResetKind::kToTime, 1700000000000 - 3600000},
      {{"--to-time=2023-11-14T22:13:20Z"}, ResetKind::kToTime, 1700000000000},
      {{"--shift-by=-5"}, ResetKind::kShiftBy, -5},
      {{"--shift-by", "-5"}, ResetKind::kShiftBy, -5},
      {{"--shift-by=3"}, ResetKind::kShiftBy, 3},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"group", "reset", "billing", "--topic=orders"};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    auto inv = Parse(args);
    ASSERT_TRUE(inv.ok()) << ::testing::PrintToString(args) << ": " << inv.status();
    EXPECT_EQ(inv->command, Command::kGroupReset);
    EXPECT_EQ(inv->group, "billing");
    EXPECT_EQ(inv->topic, "orders");
    EXPECT_EQ(inv->group_reset.kind, c.kind) << ::testing::PrintToString(args);
    EXPECT_EQ(inv->group_reset.value, c.value) << ::testing::PrintToString(args);
    EXPECT_FALSE(inv->group_reset.partition.has_value());
    EXPECT_FALSE(inv->force);
  }
  auto one = Parse({"group", "reset", "g", "--topic", "t", "--to-earliest", "--partition=3",
                    "--force", "--json"});
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->group_reset.partition, 3);
  EXPECT_TRUE(one->force);
  EXPECT_TRUE(one->json);
}

TEST(UsageErrorTest, ConsumeAndGroup) {
  ExpectUsageError({"consume", "t"}, "needs --group=G");
  ExpectUsageError({"consume", "--group=g"}, "needs TOPIC");
  ExpectUsageError({"consume", "t", "--group=bad/name"}, "not a valid group name");
  ExpectUsageError({"consume", "t", "--group=g", "--max=0"}, "--max");
  ExpectUsageError({"consume", "t", "--group=g", "--idle-timeout-ms=0"}, "--idle-timeout-ms");
  ExpectUsageError({"consume", "t", "--group=g", "--session-timeout-ms=99"},
                   "--session-timeout-ms");
  ExpectUsageError({"consume", "t", "--group=g", "--session-timeout-ms=600001"},
                   "--session-timeout-ms");
  ExpectUsageError({"consume", "t", "--group=g", "--auto-offset-reset=middle"},
                   "earliest or latest");
  ExpectUsageError({"consume", "t", "--group=g", "--from-beginning"}, "unknown flag");
  ExpectUsageError({"group"}, "subcommand");
  ExpectUsageError({"group", "rename", "g"}, "unknown command `evlog group rename`");
  ExpectUsageError({"group", "describe"}, "needs GROUP");
  ExpectUsageError({"group", "describe", "a b"}, "not a valid group name");
  ExpectUsageError({"group", "list", "extra"}, "unexpected argument");
  ExpectUsageError({"group", "delete"}, "needs GROUP");
  ExpectUsageError({"group", "reset", "g", "--to-earliest"}, "needs --topic=T");
  ExpectUsageError({"group", "reset", "g", "--topic=t"}, "exactly one of");
  ExpectUsageError({"group", "reset", "g", "--topic=t", "--to-earliest", "--to-latest"},
                   "exactly one of");
  ExpectUsageError({"group", "reset", "g", "--topic=t", "--to-offset=-1"}, "--to-offset");
  ExpectUsageError({"group", "reset", "g", "--topic=t", "--to-time=soon"}, "--to-time=soon");
  ExpectUsageError({"group", "reset", "g", "--topic=t", "--shift-by=x"}, "--shift-by");
  ExpectUsageError({"group", "reset", "g", "--topic=t", "--to-latest", "--partition=-1"},
                   "--partition");
  ExpectUsageError({"group", "reset", "g", "--topic=a/b", "--to-latest"}, "not a valid topic");
}

TEST(HelpTest, ConsumeAndGroupCommandsHaveTheirOwnHelp) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"consume", "--help"}, "Usage: evlog consume TOPIC --group=G"},
      {{"group", "--help"}, "Usage: evlog group (list|describe|reset|delete)"},
      {{"help", "group"}, "Usage: evlog group (list|describe|reset|delete)"},
      {{"group", "list", "--help"}, "Usage: evlog group list"},
      {{"group", "describe", "--help"}, "Usage: evlog group describe GROUP"},
      {{"group", "reset", "--help"}, "--shift-by=K"},
      {{"group", "delete", "-h"}, "Usage: evlog group delete GROUP"},
      {{"--help"}, "consume TOPIC --group=G"},
      {{"--help"}, "group reset GROUP --topic=T"},
  };
  for (const auto& [args, needle] : cases) {
    auto inv = Parse(args);
    ASSERT_TRUE(inv.ok()) << ::testing::PrintToString(args) << ": " << inv.status();
    EXPECT_EQ(inv->command, Command::kHelp);
    EXPECT_THAT(inv->help_text, HasSubstr(needle)) << ::testing::PrintToString(args);
  }
}

TEST(ParseTimeMsTest, RejectsWhatIsNotATime) {
  EXPECT_FALSE(ParseTimeMs("", kNow).ok());
  EXPECT_FALSE(ParseTimeMs("-5", kNow).ok());  // a duration needs a unit
  EXPECT_FALSE(ParseTimeMs("2024-13-01T00:00:00Z", kNow).ok());
  EXPECT_FALSE(ParseTimeMs("12abc", kNow).ok());
}

}  // namespace
}  // namespace evlog::cli
