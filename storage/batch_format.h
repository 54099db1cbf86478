// The on-disk (and replication) format of a record batch, version 1. Every constant of the
// format lives here. Never renumber or reuse a value that has been written to disk.
//
// A batch is stored as the value of one RocksDB key-value; the key (see meta_format.h) holds
// the partition and the batch's base offset, so the value does not repeat the base offset and
// a follower can store its leader's bytes unchanged.
//
// Byte layout (all fixed-width integers little-endian, signed ones two's complement):
//
//   offset size field               meaning
//   0      4    magic               0x424C5645: the bytes 'E' 'V' 'L' 'B'
//   4      1    version             1
//   5      1    attributes          0; bits reserved for compression (none in version 1)
//   6      2    header_size         56: where the records start
//   8      4    crc32c              CRC32C (Castagnoli) of bytes [12, total_length)
//   12     4    total_length        length of the whole batch, header included
//   16     4    record_count        >= 1
//   20     4    leader_epoch        epoch of the leader that appended it; 0 on a single node
//   24     8    first_timestamp_ms  timestamp of the first record (ms since the Unix epoch)
//   32     8    max_timestamp_ms    largest timestamp of any record in the batch
//   40     8    producer_id         -1 if the producer is not idempotent
//   48     2    producer_epoch      -1 if not idempotent
//   50     2    reserved            0
//   52     4    base_sequence       sequence number of the first record; -1 if not idempotent
//   56     ...  records, record_count of them, back to back
//
// A record (varints are LEB128; "zigzag" maps signed to unsigned as in protobuf's sint64):
//
//   varint  length            bytes of the rest of this record
//   varint  offset_delta      index of the record in the batch: 0, 1, 2, ...
//   varint  timestamp_delta   zigzag(timestamp_ms - first_timestamp_ms)
//   varint  key_length, then key bytes (0 = empty key)
//   varint  value_length, then value bytes
//   varint  header_count, then per header: varint key_length, key bytes (UTF-8 by convention),
//           varint value_length, value bytes
//
// The CRC covers everything after the crc32c field, so a flipped bit anywhere from
// total_length to the last record byte is detected; magic, version, attributes and
// header_size are checked by value. A batch whose CRC or framing is wrong is reported as
// DATA_LOSS and never returned as data.
//
// Worked example: one record, key "k", value "v", no headers, timestamp 1000, not idempotent.
//   header: 45 56 4c 42 | 01 | 00 | 38 00 | <crc 4 bytes> | 40 00 00 00 | 01 00 00 00 |
//           00 00 00 00 | e8 03 00 00 00 00 00 00 | e8 03 00 00 00 00 00 00 |
//           ff ff ff ff ff ff ff ff | ff ff | 00 00 | ff ff ff ff
//   record: 07 | 00 | 00 | 01 6b | 01 76 | 00         (total_length 56 + 8 = 64 = 0x40)
#pragma once

#include <cstdint>

namespace evlog::storage::batch_format {

inline constexpr uint32_t kMagic = 0x424C5645;  // "EVLB" read as little-endian u32
inline constexpr uint8_t kVersion = 1;
inline constexpr uint16_t kHeaderSize = 56;

// Field offsets.
inline constexpr int kMagicOffset = 0;
inline constexpr int kVersionOffset = 4;
inline constexpr int kAttributesOffset = 5;
inline constexpr int kHeaderSizeOffset = 6;
inline constexpr int kCrcOffset = 8;
inline constexpr int kTotalLengthOffset = 12;
inline constexpr int kRecordCountOffset = 16;
inline constexpr int kLeaderEpochOffset = 20;
inline constexpr int kFirstTimestampOffset = 24;
inline constexpr int kMaxTimestampOffset = 32;
inline constexpr int kProducerIdOffset = 40;
inline constexpr int kProducerEpochOffset = 48;
inline constexpr int kReservedOffset = 50;
inline constexpr int kBaseSequenceOffset = 52;
inline constexpr int kCrcCoverageStart = kTotalLengthOffset;

// Limits: a batch is at most 64 MiB (the server's own limits are lower).
inline constexpr uint32_t kMaxBatchBytes = 64u << 20;

}  // namespace evlog::storage::batch_format
