// Key-based partitioning of evlog/v1: the reference implementation of the hash documented in
// evlog.proto ("Key-based partitioning"). Header-only, no dependencies, so that the server and
// every C++ client compute exactly the same partition for a key.
//
//   partition = (Murmur2(key) & 0x7fffffff) % partition_count
//
// Murmur2 is Kafka's variant of MurmurHash2 (32-bit, seed 0x9747b28c), so keys land on the
// same partitions as with Kafka's default partitioner. Test vectors (as int32):
//   ""  -> 275646681, "21" -> -973932308, "foobar" -> -790332482, "abc" -> 479470107.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace evlog::v1 {

// Kafka's murmur2 of `key`'s bytes. Pure function of the bytes.
inline uint32_t Murmur2(std::string_view key) {
  constexpr uint32_t kSeed = 0x9747b28c;
  constexpr uint32_t kM = 0x5bd1e995;
  constexpr int kR = 24;
  const auto* data = reinterpret_cast<const unsigned char*>(key.data());
  const size_t length = key.size();
  uint32_t h = kSeed ^ static_cast<uint32_t>(length);
  const size_t blocks = length / 4;
  for (size_t i = 0; i < blocks; ++i) {
    const size_t b = i * 4;
    uint32_t k = static_cast<uint32_t>(data[b]) | (static_cast<uint32_t>(data[b + 1]) << 8) |
                 (static_cast<uint32_t>(data[b + 2]) << 16) |
                 (static_cast<uint32_t>(data[b + 3]) << 24);
    k *= kM;
    k ^= k >> kR;
    k *= kM;
    h *= kM;
    h ^= k;
  }
  const size_t tail = blocks * 4;
  switch (length % 4) {
    case 3:
      h ^= static_cast<uint32_t>(data[tail + 2]) << 16;
      [[fallthrough]];
    case 2:
      h ^= static_cast<uint32_t>(data[tail + 1]) << 8;
      [[fallthrough]];
    case 1:
      h ^= static_cast<uint32_t>(data[tail]);
      h *= kM;
  }
  h ^= h >> 13;
  h *= kM;
  h ^= h >> 15;
  return h;
}

// The partition of `key` in a topic of `partition_count` partitions.
// REQUIRES: partition_count >= 1.
inline int32_t PartitionForKey(std::string_view key, int32_t partition_count) {
  return static_cast<int32_t>((Murmur2(key) & 0x7fffffffu) %
                              static_cast<uint32_t>(partition_count));
}

}  // namespace evlog::v1
