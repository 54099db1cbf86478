// Tests of flag helpers: --fsync parsing and dash-to-underscore normalization.
#include "server/flags.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace evlog::server {
namespace {

TEST(ParseFsyncPolicyTest, AcceptsAlwaysAndInterval) {
  storage::Options options;
  ASSERT_TRUE(ParseFsyncPolicy("interval:250", &options).ok());
  EXPECT_EQ(options.fsync_policy, storage::FsyncPolicy::kInterval);
  EXPECT_EQ(options.fsync_interval, absl::Milliseconds(250));
  ASSERT_TRUE(ParseFsyncPolicy("always", &options).ok());
  EXPECT_EQ(options.fsync_policy, storage::FsyncPolicy::kAlways);
}

TEST(ParseFsyncPolicyTest, RejectsOtherValues) {
  storage::Options options;
  for (const char* bad : {"", "never", "interval:", "interval:0", "interval:x", "Always"}) {
    EXPECT_EQ(ParseFsyncPolicy(bad, &options).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(NormalizeFlagNamesTest, RewritesNamesNotValues) {
  char a0[] = "evlogd", a1[] = "--data-dir=/tmp/a-b", a2[] = "--max-record-bytes", a3[] = "--",
       a4[] = "--keep-me";
  char* argv[] = {a0, a1, a2, a3, a4};
  NormalizeFlagNames(5, argv);
  EXPECT_STREQ(argv[1], "--data_dir=/tmp/a-b");
  EXPECT_STREQ(argv[2], "--max_record_bytes");
  EXPECT_STREQ(argv[4], "--keep-me");
}

TEST(UsageTextTest, ListsFlagsWithDashes) {
  const std::string usage = UsageText();
  EXPECT_NE(usage.find("--data-dir"), std::string::npos);
  EXPECT_NE(usage.find("--fsync"), std::string::npos);
  EXPECT_NE(usage.find("--shutdown-timeout"), std::string::npos);
  EXPECT_EQ(usage.find("--data_dir"), std::string::npos);
}

}  // namespace
}  // namespace evlog::server
