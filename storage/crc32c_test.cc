// CRC32C: the hardware and the portable implementation agree with each other and with the
// standard check value, and Crc32cExtend continues a CRC. (That they agree with RocksDB's own
// implementation, which evlog replaces in-process, is checked in rocksdb_crc32c_test.cc.)
#include "storage/crc32c.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace evlog::storage {
namespace {

TEST(Crc32cTest, StandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c_internal::Crc32cPortable("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32cTest, HardwareAndPortableAgreeAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string data(1100, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t len = 0; start + len <= data.size(); len += (len < 80 ? 1 : 97)) {
      const absl::string_view piece = absl::string_view(data).substr(start, len);
      ASSERT_EQ(Crc32c(piece), crc32c_internal::Crc32cPortable(piece))
          << "start " << start << " len " << len;
    }
  }
}

TEST(Crc32cTest, ExtendContinuesACrc) {
  const std::string whole = "The quick brown fox jumps over the lazy dog, twice or more.";
  for (size_t cut = 0; cut <= whole.size(); ++cut) {
    const absl::string_view a = absl::string_view(whole).substr(0, cut);
    const absl::string_view b = absl::string_view(whole).substr(cut);
    ASSERT_EQ(Crc32cExtend(Crc32c(a), b), Crc32c(whole)) << "cut " << cut;
  }
  EXPECT_EQ(Crc32cExtend(0, "123456789"), 0xE3069283u);
}

}  // namespace
}  // namespace evlog::storage
