// CRC32C (Castagnoli), the checksum of evlog's batch format. Computed with RocksDB's public
// CRC32C generator (hardware-accelerated where the CPU has SSE4.2), so no checksum code of our
// own sits on the durability path.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace evlog::storage {

// The standard CRC32C of `data` (e.g. Crc32c("123456789") == 0xE3069283). Thread-safe.
uint32_t Crc32c(absl::string_view data);

}  // namespace evlog::storage
