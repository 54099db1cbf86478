// The values that cross the storage API: records, topic configuration and topic descriptions.
// Plain structs; no behaviour.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace evlog::storage {

// One header of a record: a string key and a byte-string value. Order is preserved.
struct RecordHeader {
  std::string key;
  std::string value;
  bool operator==(const RecordHeader&) const = default;
};

// One event. On append, `offset` is ignored and a negative `timestamp_ms` is replaced by the
// server's clock. On read, every field is filled in.
struct Record {
  int64_t offset = -1;
  int64_t timestamp_ms = -1;  // milliseconds since the Unix epoch
  std::string key;            // may be empty
  std::string value;
  std::vector<RecordHeader> headers;
  bool operator==(const Record&) const = default;
};

// Identity of an idempotent producer, stored in each batch header. The default (-1 everywhere)
// means "not idempotent". Deduplication itself is built on top of this by later work.
struct ProducerInfo {
  int64_t producer_id = -1;
  int16_t producer_epoch = -1;
  int32_t base_sequence = -1;
};

// Limits for topic creation.
inline constexpr int32_t kMaxPartitions = 4096;
inline constexpr size_t kMaxTopicNameLength = 249;

// A rate limit, enforced by the server (server/quota.h), stored here so that it survives
// restarts. Bytes are record sizes (key + value + header keys and values). 0 in a field: that
// dimension is unlimited; negative values are refused with INVALID_ARGUMENT.
struct Quota {
  int64_t bytes_per_sec = 0;
  int64_t records_per_sec = 0;
  bool unlimited() const { return bytes_per_sec == 0 && records_per_sec == 0; }
  bool operator==(const Quota&) const = default;
};

// A change to a stored quota: fields left empty keep their current value (0 for a new one).
struct QuotaChange {
  std::optional<int64_t> bytes_per_sec;
  std::optional<int64_t> records_per_sec;
};

// The producer id under which the default producer quota is stored: the quota of every
// idempotent producer without its own. Real producer ids start at 1.
inline constexpr int64_t kDefaultProducerQuotaId = 0;

// A producer's quota (or, with producer_id == kDefaultProducerQuotaId, the default one).
struct ProducerQuota {
  int64_t producer_id = 0;
  Quota quota;
  bool operator==(const ProducerQuota&) const = default;
};

// A topic's configuration, fixed at creation except the quota (LogStore::AlterTopicQuota).
struct TopicConfig {
  int32_t partitions = 1;        // 1..kMaxPartitions
  int64_t retention_ms = -1;     // keep data at least this long after its append; -1: forever
  int64_t retention_bytes = -1;  // per partition, keep at most about this much; -1: no limit
  Quota quota;                   // the topic's rate limit, over all its partitions
};

// A partition as described to users. Offsets follow Kafka's convention.
struct PartitionInfo {
  int32_t partition = 0;
  int64_t start_offset = 0;  // the lowest offset still readable (rises with retention)
  int64_t end_offset = 0;    // the next offset to be written (= high watermark on one node)
  uint64_t bytes = 0;        // bytes of stored batches from start_offset on
};

struct TopicInfo {
  std::string name;
  TopicConfig config;
  int64_t created_ms = 0;
  std::vector<PartitionInfo> partitions;  // indexed by partition number
};

}  // namespace evlog::storage
