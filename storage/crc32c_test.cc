// CRC32C: the hardware and the portable implementation agree with each other, with RocksDB's
// (the implementation evlog used before) and with the standard check value.
#include "storage/crc32c.h"

#include <memory>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "rocksdb/file_checksum.h"
#include "storage/coding.h"

namespace evlog::storage {
namespace {

uint32_t RocksCrc32c(absl::string_view data) {
  static const std::shared_ptr<rocksdb::FileChecksumGenFactory> factory =
      rocksdb::GetFileChecksumGenCrc32cFactory();
  std::unique_ptr<rocksdb::FileChecksumGenerator> gen =
      factory->CreateFileChecksumGenerator(rocksdb::FileChecksumGenContext());
  gen->Update(data.data(), data.size());
  gen->Finalize();
  std::string sum = gen->GetChecksum();
  return DecodeBigEndian32(sum.data());
}

TEST(Crc32cTest, StandardCheckValue) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c_internal::Crc32cPortable("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(""), 0u);
}

TEST(Crc32cTest, AgreesWithRocksDbAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string data(1100, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t len = 0; start + len <= data.size(); len += (len < 80 ? 1 : 97)) {
      const absl::string_view piece = absl::string_view(data).substr(start, len);
      const uint32_t expected = RocksCrc32c(piece);
      ASSERT_EQ(Crc32c(piece), expected) << "start " << start << " len " << len;
      ASSERT_EQ(crc32c_internal::Crc32cPortable(piece), expected);
    }
  }
}

}  // namespace
}  // namespace evlog::storage
