#include "storage/retention.h"

#include <algorithm>

namespace evlog::storage {

RetentionPlan PlanRetention(const TopicConfig& config,
                            const std::vector<PartitionRetentionInput>& partitions,
                            const std::vector<uint64_t>& segments, uint64_t active_segment,
                            int64_t now_ms) {
  RetentionPlan plan;
  plan.start_offsets.reserve(partitions.size());
  for (const PartitionRetentionInput& p : partitions) {
    int64_t start = p.start_offset;
    // Bytes still readable, counting each entry from the current start offset on.
    uint64_t total = 0;
    for (const auto& [seq, e] : p.entries) {
      if (e.end_offset > start) total += e.bytes;
    }
    for (const auto& [seq, e] : p.entries) {
      if (seq == active_segment) break;
      if (e.end_offset <= start) continue;
      const bool expired_by_time =
          config.retention_ms >= 0 && now_ms - e.last_append_ms > config.retention_ms;
      const bool expired_by_bytes =
          config.retention_bytes >= 0 && total >= e.bytes &&
          total - e.bytes >= static_cast<uint64_t>(config.retention_bytes);
      if (!expired_by_time && !expired_by_bytes) break;
      start = e.end_offset;
      total -= e.bytes;
    }
    plan.start_offsets.push_back(start);
  }
  for (uint64_t seq : segments) {
    if (seq == active_segment) continue;
    bool readable = false;
    for (size_t i = 0; i < partitions.size() && !readable; ++i) {
      auto it = partitions[i].entries.find(seq);
      readable = it != partitions[i].entries.end() && it->second.end_offset > plan.start_offsets[i];
    }
    if (!readable) plan.drop_segments.push_back(seq);
  }
  return plan;
}

}  // namespace evlog::storage
