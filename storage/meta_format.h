// The layout of an evlog data directory inside RocksDB, format version 2: column families,
// segment keys, and the metadata keys and values. Every on-disk constant besides the batch
// format (batch_format.h) lives here; never renumber a value that has been written.
//
// Column families:
//   "default"                       unused (RocksDB requires it)
//   "meta"                          metadata, below
//   "seg.<topic_id:08x>.<seq:016x>" one segment of one topic; seq rises from 1 per topic
//
// A segment holds the locations of its batches. Key: partition (u32 big-endian) ‖ base offset
// (u64 big-endian), so byte order is (partition, offset) order. Value: where the batch is in
// the segment's data file (segment_file_format.h: 12 bytes). Version 1 kept the batch itself
// as the value; version 2 keeps batches in data files, written once.
//
// Metadata keys (byte strings; integers in keys big-endian so that prefixes sort) and values
// (integers little-endian):
//   "F"                               u32 format version of the directory (kFormatVersion)
//   "I"                               u32 next topic id (ids are never reused)
//   "t" name                          topic record: JSON {"v":1,"id","partitions",
//                                     "retention_ms","retention_bytes","created_ms",
//                                     "quota_bytes_per_sec","quota_records_per_sec"}; the two
//                                     quota fields (0 = unlimited) may be absent (written by
//                                     builds before quotas: read as 0), and are rewritten in
//                                     place by AlterTopicQuota
//   "o" topic_id:u32 partition:u32    u64 start offset of the partition
//   "s" topic_id:u32 seq:u64          u64 segment creation time (ms since the epoch)
//   "x" topic_id:u32 seq:u64 part:u32 index entry of a partition in a segment: 5 x u64
//                                     first_offset, end_offset, bytes, last_append_ms,
//                                     max_timestamp_ms
//   "d" topic_id:u32 seq:u64          u64 length of the segment's data file below which every
//                                     frame is known durable (written after an fsync of the
//                                     file; locations past it are checked at open)
//   "e" topic_id:u32 part:u32 epoch:u32  u64 first offset written under that leader epoch
// The index entry of a segment is written in the same atomic write as the locations of the
// batches it describes, so after recovery it always matches them.
//   "c" group 0x00 topic_id:u32 part:u32   committed offset of a consumer group: u64 offset,
//                                     u64 commit time (ms since the epoch)
//   "g" group                         the group coordinator's state: an opaque blob
// Group names never contain 0x00, so "c" group 0x00 is a prefix of exactly that group's keys.
//   "P"                               u64 next producer id (ids are never reused)
//   "p" topic_id:u32 part:u32 producer_id:u64   an idempotent producer's sequence state on a
//                                     partition (producer_state.h), written atomically with
//                                     the batch that changed it
//   "q" producer_id:u64               a producer's quota: u64 bytes_per_sec, u64
//                                     records_per_sec (16 bytes; 0 = unlimited). producer_id 0
//                                     (kDefaultProducerQuotaId) holds the default producer
//                                     quota. Written synced; builds before quotas ignore "q".
//   Worked example: producer 7 limited to 1 MiB/s and no record limit is the key
//   71 00 00 00 00 00 00 00 07 and the value 00 00 10 00 00 00 00 00 | 00 x 8.
#pragma once

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "storage/record.h"

namespace evlog::storage::meta {

inline constexpr uint32_t kFormatVersion = 2;
inline constexpr char kMetaColumnFamily[] = "meta";
inline constexpr char kSegmentPrefix[] = "seg.";

inline constexpr char kFormatKey[] = "F";
inline constexpr char kNextTopicIdKey[] = "I";
inline constexpr char kTopicPrefix = 't';
inline constexpr char kStartOffsetPrefix = 'o';
inline constexpr char kSegmentRecordPrefix = 's';
inline constexpr char kIndexPrefix = 'x';
inline constexpr char kSegmentDurablePrefix = 'd';
inline constexpr char kEpochPrefix = 'e';
inline constexpr char kCommittedOffsetPrefix = 'c';
inline constexpr char kGroupStatePrefix = 'g';
inline constexpr char kProducerStatePrefix = 'p';
inline constexpr char kNextProducerIdKey[] = "P";
inline constexpr char kProducerQuotaPrefix = 'q';
inline constexpr size_t kProducerQuotaValueSize = 16;

// A partition's share of one segment.
struct IndexEntry {
  int64_t first_offset = 0;  // base offset of its first batch in the segment
  int64_t end_offset = 0;    // one past its last record in the segment
  uint64_t bytes = 0;        // stored batch bytes
  int64_t last_append_ms = 0;
  int64_t max_timestamp_ms = -1;
};

// A topic's durable record.
struct TopicRecord {
  uint32_t id = 0;
  TopicConfig config;
  int64_t created_ms = 0;
};

std::string SegmentName(uint32_t topic_id, uint64_t seq);
// Parses a segment column family name. Returns false if `name` is not one.
bool ParseSegmentName(absl::string_view name, uint32_t* topic_id, uint64_t* seq);

std::string BatchKey(uint32_t partition, int64_t base_offset);
void ParseBatchKey(absl::string_view key, uint32_t* partition, int64_t* base_offset);

std::string TopicKey(absl::string_view name);
std::string StartOffsetKey(uint32_t topic_id, uint32_t partition);
std::string SegmentRecordKey(uint32_t topic_id, uint64_t seq);
std::string IndexKey(uint32_t topic_id, uint64_t seq, uint32_t partition);
std::string SegmentDurableKey(uint32_t topic_id, uint64_t seq);
std::string EpochKey(uint32_t topic_id, uint32_t partition, uint32_t epoch);
std::string GroupOffsetsPrefix(absl::string_view group);
std::string CommittedOffsetKey(absl::string_view group, uint32_t topic_id, uint32_t partition);
std::string GroupStateKey(absl::string_view group);
std::string ProducerStateKey(uint32_t topic_id, uint32_t partition, int64_t producer_id);
std::string ProducerQuotaKey(int64_t producer_id);
// The prefix shared by every key of `prefix` kind for one topic, and the key just past them.
std::string TopicScopedPrefix(char prefix, uint32_t topic_id);
std::string TopicScopedLimit(char prefix, uint32_t topic_id);

std::string EncodeTopicRecord(const TopicRecord& topic);
// Returns nullopt if the value is not a valid version-1 topic record.
absl::optional<TopicRecord> DecodeTopicRecord(absl::string_view value);

std::string EncodeIndexEntry(const IndexEntry& entry);
absl::optional<IndexEntry> DecodeIndexEntry(absl::string_view value);

// A producer quota value ("q" keys). Decode returns nullopt unless the value is 16 bytes
// holding two rates that fit in int64 (>= 0).
std::string EncodeProducerQuota(const Quota& quota);
absl::optional<Quota> DecodeProducerQuota(absl::string_view value);

std::string EncodeU64(uint64_t v);
absl::optional<uint64_t> DecodeU64(absl::string_view value);

}  // namespace evlog::storage::meta
