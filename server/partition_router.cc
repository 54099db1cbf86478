#include "server/partition_router.h"

#include <string_view>

#include "evlog/v1/partitioner.h"

namespace evlog::server {

absl::StatusOr<int32_t> PartitionRouter::Route(absl::string_view topic, int32_t partition,
                                               absl::string_view key) {
  if (partition >= 0) return partition;
  absl::StatusOr<int32_t> count = PartitionCount(topic);
  if (!count.ok()) return count.status();
  return evlog::v1::PartitionForKey(std::string_view(key.data(), key.size()), *count);
}

void PartitionRouter::Forget(absl::string_view topic) {
  absl::MutexLock lock(&mu_);
  counts_.erase(topic);
  ++generation_;
}

absl::StatusOr<int32_t> PartitionRouter::PartitionCount(absl::string_view topic) {
  uint64_t generation;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = counts_.find(topic); it != counts_.end()) return it->second;
    generation = generation_;
  }
  absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(topic);
  if (!info.ok()) return info.status();
  const int32_t count = info->config.partitions;
  absl::MutexLock lock(&mu_);
  if (generation == generation_) counts_.insert_or_assign(std::string(topic), count);
  return count;
}

}  // namespace evlog::server
