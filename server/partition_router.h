// PartitionRouter: resolves the partition of a produce request. An explicit partition is kept
// as is (storage checks its range); -1 becomes the partition of the records' key by the
// documented hash (evlog/v1/partitioner.h), which needs the topic's partition count. Counts are
// cached, since a topic's partition count is fixed from creation to deletion; the admin
// service calls Forget() when it creates or deletes a topic.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "storage/log_store.h"

namespace evlog::server {

class PartitionRouter {
 public:
  // `store` is not owned and must outlive the router.
  explicit PartitionRouter(storage::LogStore* store) : store_(store) {}

  // The partition to append to: `partition` if >= 0, else the partition of `key`.
  // Errors (only for partition -1): NOT_FOUND if the topic does not exist.
  absl::StatusOr<int32_t> Route(absl::string_view topic, int32_t partition, absl::string_view key);

  // Drops the cached partition count of `topic` (it was created or deleted).
  void Forget(absl::string_view topic);

 private:
  absl::StatusOr<int32_t> PartitionCount(absl::string_view topic);

  storage::LogStore* const store_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, int32_t> counts_ ABSL_GUARDED_BY(mu_);
  // Bumped by Forget(), so that a count looked up before a Forget() is not cached after it.
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace evlog::server
