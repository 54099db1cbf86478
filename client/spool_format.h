// The on-disk format of the client spool (client/spool.h): every key and value it writes to
// its RocksDB instance, byte by byte. This is a disk format: never renumber a constant or
// change a layout that has been written; add a new version instead.
//
// Keys (one RocksDB instance, default column family; "BE" = big-endian so that byte order is
// numeric order; topic names are [A-Za-z0-9._-]{1,249}, so they never contain a 0 byte):
//
//   'B' BE64(id)                 a pending batch, value: the batch value below
//   'D' BE64(id)                 a dead-lettered batch (refused for good by the server), value:
//                                the batch value below, byte for byte as it was pending
//   'E' BE64(id)                 why batch `id` was dead-lettered, value: JSON text
//                                {"code":5,"message":"...","time_ms":T,"producer_id":P}
//   'S' topic 0x00 BE32(part)    the partition's next sequence number, value: Fixed64 (LE)
//   'P' topic 0x00 BE32(part)    the partition's producer-id overrides, value: JSON text
//                                [{"from":N,"producer_id":P,"epoch":E},...] sorted by "from";
//                                batches with id >= N use P (P == 0: a fresh id must be asked
//                                for before sending them)
//   'T' topic                    the topic's partition count as last seen, value: Fixed32 (LE)
//   'M' "format"                 the spool format version, value: Fixed32 (LE) == kSpoolVersion
//   'M' "producer"               the spool's producer, value: JSON {"producer_id":P,"epoch":E}
//   'M' "next_id"                the next spool id to assign, value: Fixed64 (LE)
//   'M' "limits"                 the server's limits as last seen, value: JSON
//                                {"max_record_bytes":R,"max_batch_bytes":B,"max_batch_records":N}
//
// Spool ids start at 1 and only grow ("M next_id" is written with every append), so they give
// the order in which batches were accepted, across restarts.
//
// Batch value, version 1 (all integers little-endian):
//
//   offset  size  field
//   0       1     version           kBatchVersion (1); other values: DATA_LOSS
//   1       1     reserved          0
//   2       2     topic_length      L, 1..249
//   4       4     crc32c            CRC32C (Castagnoli) of bytes [8, end): everything after it
//   8       4     record_count      n >= 1
//   12      4     partition         >= 0
//   16      4     base_sequence     the sequence number of the first record, >= 0
//   20      8     spooled_ms        when the batch was appended, ms since the Unix epoch
//   28      L     topic             the topic name
//   28+L    ...   records           the records as a serialized evlog.v1.ProduceRequest holding
//                                   only field 4 (records): n times (tag 0x22, varint length,
//                                   an evlog.v1.Record message), so a drain parses it straight
//                                   into the request it sends
//
// Worked example: topic "t", partition 2, base_sequence 7, one record with value "v" spooled at
// ms 1700000000000 is 01 00 01 00 | crc(4) | 01 00 00 00 | 02 00 00 00 | 07 00 00 00 |
// 00 68 e5 cf 8b 01 00 00 | 74 | 22 03 22 01 76 (Record{value: "v"} is 22 01 76).
//
// The CRC covers every field after it, so a torn or bit-flipped value is detected when it is
// read; such a batch is never sent: it is moved to the dead-letter area with DATA_LOSS.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace evlog::client::spool_format {

inline constexpr uint32_t kSpoolVersion = 1;
inline constexpr uint8_t kBatchVersion = 1;
inline constexpr size_t kBatchHeaderSize = 28;

inline constexpr char kPendingPrefix = 'B';
inline constexpr char kDeadPrefix = 'D';
inline constexpr char kDeadReasonPrefix = 'E';
inline constexpr char kSequencePrefix = 'S';
inline constexpr char kOverridePrefix = 'P';
inline constexpr char kTopicPrefix = 'T';
inline constexpr char kMetaPrefix = 'M';

// The fields of a batch value (see above).
struct BatchFields {
  std::string topic;
  int32_t partition = 0;
  int32_t base_sequence = 0;
  int32_t record_count = 0;
  int64_t spooled_ms = 0;
  std::string records;  // serialized ProduceRequest with only field 4 set
};

// The encoded size of a batch value with a topic of `topic_size` bytes and `records_size`
// bytes of records. Exact: EncodeBatch's output has this size.
inline int64_t BatchValueSize(size_t topic_size, size_t records_size) {
  return static_cast<int64_t>(kBatchHeaderSize + topic_size + records_size);
}

// Encodes `batch` as a version-1 batch value.
std::string EncodeBatch(const BatchFields& batch);

// Decodes and checks a batch value. Errors: DATA_LOSS naming what is wrong (short value,
// unknown version, bad topic length, CRC mismatch, bad counts).
absl::StatusOr<BatchFields> DecodeBatch(absl::string_view value);

// Keys.
std::string IdKey(char prefix, uint64_t id);  // 'B'/'D'/'E' BE64(id)
uint64_t IdOfKey(absl::string_view key);      // REQUIRES: an IdKey
std::string PartitionKey(char prefix, absl::string_view topic, int32_t partition);  // 'S'/'P'
// Splits a PartitionKey; false if malformed.
bool ParsePartitionKey(absl::string_view key, std::string* topic, int32_t* partition);
std::string TopicKey(absl::string_view topic);  // 'T' topic
std::string MetaKey(absl::string_view name);    // 'M' name

// CRC32C (Castagnoli) of `data`, computed with RocksDB's generator.
uint32_t Crc32c(absl::string_view data);

}  // namespace evlog::client::spool_format
