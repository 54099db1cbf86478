// The Consumer's decisions that need no server, kept apart so they are unit-tested on their
// own (consumer_internal_test.cc): options checks, what a new assignment starts and stops,
// how pending commits are grouped into calls, and how Poll shares records among partitions.
// Not part of the public API.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client/consumer.h"
#include "client/record.h"

namespace evlog::client::consumer_internal {

// INVALID_ARGUMENT naming the bad option, else OK.
absl::Status ValidateOptions(const ConsumerOptions& options);

// The heartbeat interval in effect: the option, or a third of the session timeout.
absl::Duration HeartbeatInterval(const ConsumerOptions& options);

// What to do when the server sends a new assignment.
struct AssignmentDiff {
  // Start reading these at their start_offset: partitions not held before, and partitions
  // held with an older assigned_generation (they were another member's in between, so the
  // local position is stale and the group's committed offset is the truth).
  std::vector<AssignedPartition> added;
  // Stop reading these (not assigned any more, or re-assigned as above), sorted.
  std::vector<TopicPartition> removed;
};

// `held`: the partitions read now, each with the assigned_generation it was started with.
AssignmentDiff DiffAssignment(const std::map<TopicPartition, int64_t>& held,
                              const std::vector<AssignedPartition>& next);

// A position to commit: `offset` of `tp`, as owned by `member_id` in `generation`.
struct PendingCommit {
  TopicPartition tp;
  std::string member_id;
  int64_t generation = 0;
  int64_t offset = 0;
};

// One CommitOffsets call.
struct CommitBatch {
  std::string member_id;
  int64_t generation = 0;
  std::string topic;
  std::vector<std::pair<int32_t, int64_t>> offsets;  // partition -> offset, sorted
};

// Groups pending commits into calls: one per (member, generation, topic), since a call names
// one topic and one generation and is all-or-nothing. Deterministic order.
std::vector<CommitBatch> BatchCommits(const std::vector<PendingCommit>& pending);

// Moves up to `max` records out of `queues` into the result, fairly: starting at queue
// `first` (modulo the count) and going round, each non-empty queue gives up to
// max(1, max / non-empty queues) records per round, in its own order.
std::vector<ConsumedRecord> TakeFairly(const std::vector<std::deque<ConsumedRecord>*>& queues,
                                       size_t first, size_t max);

// "t:0, t:3, u:1".
std::string FormatPartitions(const std::vector<TopicPartition>& partitions);

// Bytes a record holds in memory, roughly (key, value, headers, overhead).
int64_t RecordBytes(const ConsumedRecord& record);

}  // namespace evlog::client::consumer_internal
