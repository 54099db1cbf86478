#include "storage/crc32c.h"

#include <memory>
#include <string>

#include "rocksdb/file_checksum.h"
#include "storage/coding.h"

namespace evlog::storage {

uint32_t Crc32c(absl::string_view data) {
  // The factory is stateless and shared; each call gets its own generator.
  static const std::shared_ptr<rocksdb::FileChecksumGenFactory> factory =
      rocksdb::GetFileChecksumGenCrc32cFactory();
  std::unique_ptr<rocksdb::FileChecksumGenerator> gen =
      factory->CreateFileChecksumGenerator(rocksdb::FileChecksumGenContext());
  gen->Update(data.data(), data.size());
  gen->Finalize();
  // RocksDB returns the checksum as 4 big-endian bytes.
  std::string sum = gen->GetChecksum();
  return DecodeBigEndian32(sum.data());
}

}  // namespace evlog::storage
