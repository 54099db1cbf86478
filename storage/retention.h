// Retention planning: given a topic's segments and its partitions' index entries, decide how
// far each partition's start offset may advance and which whole segments can be dropped.
// Pure functions (no I/O, no clock), so the policy is unit-tested on its own; LogStore applies
// the plan atomically on its writer thread.
//
// Policy (as Kafka's): retention works on whole sealed segments, never on the active one.
//   - By time: a partition's data in a sealed segment expires once the last append of that
//     partition into the segment is older than retention_ms.
//   - By bytes: the oldest sealed data of a partition is released while what remains would
//     still be at least retention_bytes, so a partition holds at most about retention_bytes
//     plus one segment.
// A sealed segment is dropped once every partition's start offset is at or past its data.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "storage/meta_format.h"
#include "storage/record.h"

namespace evlog::storage {

// One partition's view: its start offset and its entries keyed by segment sequence number.
struct PartitionRetentionInput {
  int64_t start_offset = 0;
  std::map<uint64_t, meta::IndexEntry> entries;
};

struct RetentionPlan {
  std::vector<int64_t> start_offsets;   // new start offset per partition (never lower)
  std::vector<uint64_t> drop_segments;  // sealed segments no partition can read any more
};

// REQUIRES: `segments` lists every segment of the topic in ascending order, with
// `active_segment` the last one.
RetentionPlan PlanRetention(const TopicConfig& config,
                            const std::vector<PartitionRetentionInput>& partitions,
                            const std::vector<uint64_t>& segments, uint64_t active_segment,
                            int64_t now_ms);

}  // namespace evlog::storage
