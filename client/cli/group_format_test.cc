#include "client/cli/group_format.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace evlog::cli {
namespace {

using ::testing::HasSubstr;

client::GroupPartitionInfo Partition(int32_t partition, std::string owner, int64_t committed,
                                     int64_t commit_time_ms, int64_t start, int64_t end,
                                     int64_t lag) {
  client::GroupPartitionInfo p;
  p.tp.topic = "orders";
  p.tp.partition = partition;
  p.owner = std::move(owner);
  p.committed_offset = committed;
  p.commit_time_ms = commit_time_ms;
  p.start_offset = start;
  p.end_offset = end;
  p.lag = lag;
  return p;
}

client::GroupInfo Sample() {
  client::GroupInfo g;
  g.group = "billing";
  g.generation = 7;
  client::GroupMemberInfo m;
  m.member_id = "host:1-ab";
  m.client_id = "host:1";
  m.topics = {"orders"};
  m.assignment.push_back(client::TopicPartition{"orders", 0});
  m.assignment.push_back(client::TopicPartition{"orders", 1});
  m.last_heartbeat_ms = 1700000000123;
  g.members.push_back(std::move(m));
  g.partitions.push_back(Partition(0, "host:1-ab", 5, 1700000000000, 0, 12, 7));
  g.partitions.push_back(Partition(1, "", -1, 0, 2, 4, 2));
  return g;
}

TEST(GroupFormatTest, TableShowsMembersAndPerPartitionOffsetsLagAndOwner) {
  const std::string table = FormatGroupTable(Sample());
  EXPECT_THAT(table, HasSubstr("group:              billing\n"));
  EXPECT_THAT(table, HasSubstr("generation:         7\n"));
  EXPECT_THAT(table, HasSubstr("auto offset reset:  earliest\n"));
  EXPECT_THAT(table, HasSubstr("host:1-ab  host:1  2023-11-14T22:13:20.123Z  orders:0,orders:1"));
  EXPECT_THAT(table, HasSubstr("TOPIC   PARTITION  COMMITTED  END  LAG  OWNER      LAST COMMIT\n"));
  EXPECT_THAT(
      table,
      HasSubstr("orders          0          5   12    7  host:1-ab  2023-11-14T22:13:20.000Z\n"));
  EXPECT_THAT(table, HasSubstr("orders          1          -    4    2  -          -\n"));
  EXPECT_THAT(table, HasSubstr("total lag: 9\n"));
}

TEST(GroupFormatTest, JsonHasEveryFieldInOrder) {
  const std::string json = FormatGroupJson(Sample());
  EXPECT_THAT(json,
              HasSubstr(R"({"group":"billing","generation":7,"auto_offset_reset":"earliest",)"
                        R"("members":[{"member_id":"host:1-ab","client_id":"host:1",)"
                        R"("topics":["orders"],"assignment":[{"topic":"orders","partition":0},)"));
  auto j = nlohmann::json::parse(json);
  EXPECT_EQ(j["partitions"][0]["committed_offset"], 5);
  EXPECT_EQ(j["partitions"][0]["lag"], 7);
  EXPECT_EQ(j["partitions"][0]["owner"], "host:1-ab");
  EXPECT_EQ(j["partitions"][1]["committed_offset"], -1);
  EXPECT_EQ(j["partitions"][1]["commit_time_ms"], 0);
  EXPECT_EQ(j["partitions"][1]["start_offset"], 2);
  EXPECT_EQ(j["members"][0]["last_heartbeat_ms"], 1700000000123);
}

TEST(GroupFormatTest, EmptyGroupHasNoMemberTable) {
  client::GroupInfo g;
  g.group = "idle";
  g.auto_offset_reset = client::OffsetReset::kLatest;
  const std::string table = FormatGroupTable(g);
  EXPECT_THAT(table, HasSubstr("auto offset reset:  latest\n"));
  EXPECT_THAT(table, HasSubstr("members:            0\n"));
  EXPECT_THAT(table, ::testing::Not(HasSubstr("MEMBER")));
  EXPECT_THAT(table, HasSubstr("total lag: 0\n"));
}

TEST(GroupFormatTest, ResetResultAsTableAndJson) {
  EXPECT_EQ(FormatResetResult("g", "t", {{0, 5}, {1, 12}}, false),
            "reset group g on topic t:\n"
            "TOPIC  PARTITION  NEW OFFSET\n"
            "t              0           5\n"
            "t              1          12\n");
  EXPECT_EQ(FormatResetResult("g", "t", {{0, 5}}, true),
            R"({"group":"g","topic":"t","offsets":[{"partition":0,"offset":5}]})"
            "\n");
}

}  // namespace
}  // namespace evlog::cli
