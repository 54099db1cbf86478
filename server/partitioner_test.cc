// The key hash must match the documented test vectors (Kafka's murmur2), so other languages
// can reproduce evlog's partitioning.
#include "evlog/v1/partitioner.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace {

TEST(PartitionerTest, Murmur2MatchesKafkaVectors) {
  const std::pair<std::string, int32_t> kVectors[] = {
      {"", 275646681},
      {"21", -973932308},
      {"foobar", -790332482},
      {"abc", 479470107},
      {"a-little-bit-long-string", -985981536},
      {"a-little-bit-longer-string", -1486304829},
      {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
  };
  for (const auto& [key, expected] : kVectors) {
    EXPECT_EQ(static_cast<int32_t>(evlog::v1::Murmur2(key)), expected) << key;
  }
}

TEST(PartitionerTest, PartitionIsPositiveHashModuloCount) {
  // murmur2("foobar") = -790332482; & 0x7fffffff = 1357151166; % 7 = 1357151166 % 7.
  EXPECT_EQ(evlog::v1::PartitionForKey("foobar", 7), 1357151166 % 7);
  EXPECT_EQ(evlog::v1::PartitionForKey("anything", 1), 0);
  for (int i = 0; i < 1000; ++i) {
    const int32_t p = evlog::v1::PartitionForKey(std::to_string(i), 12);
    EXPECT_GE(p, 0);
    EXPECT_LT(p, 12);
  }
}

}  // namespace
