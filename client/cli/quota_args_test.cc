// Parsing of the quota flags and commands of `evlog` (quota_cmd.h): no server involved.
#include <string>
#include <vector>

#include "client/cli/args.h"
#include "client/cli/quota_cmd.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace evlog::cli {
namespace {

using ::testing::HasSubstr;

absl::StatusOr<Invocation> Parse(std::vector<std::string> args) {
  return ParseCommandLine(args, absl::FromUnixMillis(1700000000000));
}

void ExpectUsageError(std::vector<std::string> args, const std::string& needle) {
  absl::StatusOr<Invocation> inv = Parse(args);
  ASSERT_FALSE(inv.ok()) << "parsed: " << ::testing::PrintToString(args);
  EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument) << inv.status();
  EXPECT_THAT(std::string(inv.status().message()), HasSubstr(needle));
  EXPECT_THAT(std::string(inv.status().message()), HasSubstr("--help"));
}

TEST(ParseByteRateTest, AcceptsBytesAndBinaryAndDecimalUnits) {
  EXPECT_EQ(*ParseByteRate("f", "1048576"), 1048576);
  EXPECT_EQ(*ParseByteRate("f", "512KiB"), 512 * 1024);
  EXPECT_EQ(*ParseByteRate("f", "10MiB"), 10 << 20);
  EXPECT_EQ(*ParseByteRate("f", "1GiB"), int64_t{1} << 30);
  EXPECT_EQ(*ParseByteRate("f", "500KB"), 500000);
  EXPECT_EQ(*ParseByteRate("f", "0"), 0);
}

TEST(ParseByteRateTest, RejectsOtherFormsNamingTheFlag) {
  for (const char* bad :
       {"", "-1", "1.5MiB", "12XB", "MiB", "99999999999999999999", "9000000000GiB"}) {
    absl::StatusOr<int64_t> r = ParseByteRate("max-bytes-per-sec", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("--max-bytes-per-sec="));
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("512MiB"));
  }
}

TEST(QuotaArgsTest, TopicCreateTakesQuotaFlags) {
  auto inv =
      Parse({"topic", "create", "t", "--max-bytes-per-sec=10MiB", "--max-records-per-sec", "2000"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kTopicCreate);
  EXPECT_EQ(inv->quota.bytes_per_sec, 10 << 20);
  EXPECT_EQ(inv->quota.records_per_sec, 2000);
  inv = Parse({"topic", "create", "t"});
  ASSERT_TRUE(inv.ok());
  EXPECT_FALSE(inv->quota.bytes_per_sec.has_value());
}

TEST(QuotaArgsTest, TopicAlterKeepsRatesNotGiven) {
  auto inv = Parse({"topic", "alter", "t", "--max-records-per-sec=0"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kTopicAlter);
  EXPECT_EQ(inv->topic, "t");
  EXPECT_EQ(inv->quota.records_per_sec, 0);
  EXPECT_FALSE(inv->quota.bytes_per_sec.has_value());
}

TEST(QuotaArgsTest, TopicAlterErrors) {
  ExpectUsageError({"topic", "alter", "t"}, "--max-bytes-per-sec");
  ExpectUsageError({"topic", "alter", "t", "--max-records-per-sec=-1"}, "--max-records-per-sec");
  ExpectUsageError({"topic", "alter", "t", "--max-bytes-per-sec=lots"}, "is not a size");
  ExpectUsageError({"topic", "alter", "bad name", "--max-bytes-per-sec=1"}, "topic name");
  ExpectUsageError({"topic", "alter", "t", "--partitions=3"}, "unknown flag --partitions");
}

TEST(QuotaArgsTest, QuotaSetForAProducerOrTheDefault) {
  auto inv = Parse({"quota", "set", "--producer-id=7", "--bytes-per-sec=512KiB"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kQuotaSet);
  EXPECT_EQ(inv->quota.producer_id, 7);
  EXPECT_FALSE(inv->quota.default_producer);
  EXPECT_EQ(inv->quota.bytes_per_sec, 512 * 1024);
  EXPECT_FALSE(inv->quota.records_per_sec.has_value());
  inv = Parse({"quota", "set", "--default-producer", "--records-per-sec=100"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_TRUE(inv->quota.default_producer);
  EXPECT_EQ(inv->quota.records_per_sec, 100);
}

TEST(QuotaArgsTest, QuotaSetAndDeleteErrors) {
  ExpectUsageError({"quota", "set", "--bytes-per-sec=1"}, "exactly one of --producer-id");
  ExpectUsageError({"quota", "set", "--producer-id=1", "--default-producer", "--bytes-per-sec=1"},
                   "exactly one of --producer-id");
  ExpectUsageError({"quota", "set", "--producer-id=0", "--bytes-per-sec=1"}, "> 0");
  ExpectUsageError({"quota", "set", "--producer-id=x", "--bytes-per-sec=1"}, "> 0");
  ExpectUsageError({"quota", "set", "--producer-id=3"}, "--bytes-per-sec");
  ExpectUsageError({"quota", "delete"}, "exactly one of --producer-id");
  ExpectUsageError({"quota", "frobnicate"}, "set, delete or list");
  ExpectUsageError({"quota"}, "needs a subcommand");
}

TEST(QuotaArgsTest, QuotaDeleteAndList) {
  auto inv = Parse({"quota", "delete", "--default-producer"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kQuotaDelete);
  EXPECT_TRUE(inv->quota.default_producer);
  inv = Parse({"quota", "list", "--json"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kQuotaList);
  EXPECT_TRUE(inv->json);
}

TEST(QuotaArgsTest, HelpTexts) {
  auto inv = Parse({"quota", "--help"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kHelp);
  EXPECT_THAT(inv->help_text, HasSubstr("quota set"));
  inv = Parse({"topic", "alter", "--help"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_THAT(inv->help_text, HasSubstr("--max-bytes-per-sec=SIZE"));
  EXPECT_THAT(ToolUsage(), HasSubstr("topic alter"));
  EXPECT_THAT(ToolUsage(), HasSubstr("quota list"));
}

TEST(QuotaFormatTest, RatesForPeople) {
  EXPECT_EQ(FormatByteRate(0), "unlimited bytes/s");
  EXPECT_EQ(FormatByteRate(1048576), "1048576 bytes/s (1 MiB/s)");
  EXPECT_EQ(FormatByteRate(500), "500 bytes/s");
  EXPECT_EQ(FormatRecordRate(2000), "2000 records/s");
}

}  // namespace
}  // namespace evlog::cli
