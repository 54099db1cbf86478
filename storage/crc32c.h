// CRC32C (Castagnoli), the checksum of evlog's batch format.
//
// On x86-64 CPUs with SSE4.2 (every x86-64 server since 2008) it uses the CPU's CRC32
// instruction, 8 bytes at a time; elsewhere a byte-wise table. Debian's RocksDB, which computed
// it before, is built portable and so runs a software CRC at ~1.1 GB/s: measured, that was a
// visible share of the produce path's CPU on both ends (client and server each checksum every
// batch). crc32c_test.cc checks the two implementations against each other and the standard
// check value, rocksdb_crc32c_test.cc against RocksDB's. No RocksDB dependency, so the client
// library can build batches too. evlogd also gives it to RocksDB (storage/rocksdb_crc32c.h).
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace evlog::storage {

// The standard CRC32C of `data` (e.g. Crc32c("123456789") == 0xE3069283). Thread-safe.
uint32_t Crc32c(absl::string_view data);

// The CRC32C of A followed by `data`, given `crc` == Crc32c(A): Crc32cExtend(0, d) ==
// Crc32c(d) and Crc32cExtend(Crc32c(a), b) == Crc32c(a + b). Thread-safe.
uint32_t Crc32cExtend(uint32_t crc, absl::string_view data);

namespace crc32c_internal {
// The table-driven implementation, always available (for tests and CPUs without SSE4.2).
uint32_t Crc32cPortable(absl::string_view data);
// True if Crc32c uses the CPU's CRC32 instruction.
bool HardwareAccelerated();
}  // namespace crc32c_internal

}  // namespace evlog::storage
