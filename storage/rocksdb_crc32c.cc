#include "storage/rocksdb_crc32c.h"

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"
#include "storage/crc32c.h"

// RocksDB's declaration (util/crc32c.h, not installed by Debian): "the crc32c of
// concat(A, data[0,n-1]) where init_crc is the crc32c of some string A".
namespace rocksdb::crc32c {
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);
}  // namespace rocksdb::crc32c

uint32_t rocksdb::crc32c::Extend(uint32_t init_crc, const char* data, size_t n) {
  return evlog::storage::Crc32cExtend(init_crc, absl::string_view(data, n));
}

namespace evlog::storage {

bool RocksDbUsesEvlogCrc32c() {
  // The dynamic linker binds librocksdb's calls to the first definition in the global scope,
  // which is what dlsym(RTLD_DEFAULT) finds: ours only if the executable exports it.
  static const bool ours = [] {
    void* bound = dlsym(RTLD_DEFAULT, "_ZN7rocksdb6crc32c6ExtendEjPKcm");
    return bound == reinterpret_cast<void*>(&rocksdb::crc32c::Extend);
  }();
  return ours;
}

}  // namespace evlog::storage
