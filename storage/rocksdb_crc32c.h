// Hardware CRC32C for RocksDB's own checksums (the write-ahead log's records above all).
//
// Why: Debian builds librocksdb portable, without SSE4.2, so its CRC32C runs in software at
// ~1.1 GB/s. Every byte evlog stores passes through it once, in the write-ahead log record
// that carries the batch: at 1.5M 100-byte events/s it was ~18% of evlogd's CPU (perf: a
// table-driven loop inside librocksdb). RocksDB calls its `rocksdb::crc32c::Extend` through
// the dynamic linker (a PLT call to an exported symbol), so a program that defines the same
// function, and exports it, replaces it for the library too (ELF symbol interposition): this
// module defines it with evlog's CRC32C (storage/crc32c.h: the CPU's CRC32 instruction, or a
// table where there is none). The function computes the same standard CRC32C, so what RocksDB
// writes and checks does not change (crc32c_test.cc and rocksdb_crc32c_test.cc check it).
//
// Linking: the definition lives in evlog_storage, which exports it from every executable that
// links it (CMake: --export-dynamic-symbol). Without the export RocksDB keeps its own: slower,
// never wrong. LogStore::Open logs which one is in use.
#pragma once

namespace evlog::storage {

// True if RocksDB's CRC32C calls reach evlog's implementation in this process. Thread-safe.
bool RocksDbUsesEvlogCrc32c();

}  // namespace evlog::storage
