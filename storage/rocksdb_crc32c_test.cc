// RocksDB's CRC32C calls reach evlog's implementation in this process, and that implementation
// computes exactly what RocksDB's own does (found in librocksdb itself with dlsym), so what
// RocksDB writes and checks is unchanged.
#include "storage/rocksdb_crc32c.h"

#include <dlfcn.h>

#include <cstdint>
#include <random>
#include <string>

#include "gtest/gtest.h"
#include "rocksdb/file_checksum.h"
#include "storage/crc32c.h"

namespace evlog::storage {
namespace {

using ExtendFn = uint32_t (*)(uint32_t, const char*, size_t);

// librocksdb's own rocksdb::crc32c::Extend, whatever the process binds its calls to.
ExtendFn RocksDbOwnExtend() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&rocksdb::GetFileChecksumGenCrc32cFactory), &info) == 0) {
    return nullptr;
  }
  void* library = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  if (library == nullptr) return nullptr;
  return reinterpret_cast<ExtendFn>(dlsym(library, "_ZN7rocksdb6crc32c6ExtendEjPKcm"));
}

TEST(RocksDbCrc32cTest, RocksDbCallsReachEvlogsCrc32c) {
  EXPECT_TRUE(RocksDbUsesEvlogCrc32c())
      << "the executable does not export rocksdb::crc32c::Extend (storage/CMakeLists.txt)";
}

TEST(RocksDbCrc32cTest, SameResultsAsRocksDbsOwnAtEveryLengthAlignmentAndStart) {
  const ExtendFn theirs = RocksDbOwnExtend();
  ASSERT_NE(theirs, nullptr) << dlerror();
  std::mt19937 rng(11);
  std::string data(1100, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  for (size_t start = 0; start < 9; ++start) {
    for (size_t len = 0; start + len <= data.size(); len += (len < 80 ? 1 : 97)) {
      const uint32_t init = rng();
      ASSERT_EQ(Crc32cExtend(init, absl::string_view(data).substr(start, len)),
                theirs(init, data.data() + start, len))
          << "start " << start << " len " << len << " init " << init;
    }
  }
}

// RocksDB's CRC32C file checksum (which calls rocksdb::crc32c::Extend inside librocksdb) gives
// the standard value: its calls really go through the replacement correctly.
TEST(RocksDbCrc32cTest, RocksDbChecksumsThroughItAreStandard) {
  std::unique_ptr<rocksdb::FileChecksumGenerator> gen =
      rocksdb::GetFileChecksumGenCrc32cFactory()->CreateFileChecksumGenerator(
          rocksdb::FileChecksumGenContext());
  gen->Update("123456789", 9);
  gen->Finalize();
  const std::string sum = gen->GetChecksum();
  ASSERT_EQ(sum.size(), 4u);
  EXPECT_EQ(sum, std::string("\xE3\x06\x92\x83", 4));
}

}  // namespace
}  // namespace evlog::storage
