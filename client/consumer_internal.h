// The Consumer's decisions that need no server, kept apart so they are unit-tested on their
// own (consumer_internal_test.cc): options checks, what a new assignment starts and stops,
// how pending commits are grouped into calls, and how Poll shares records among partitions.
// Not part of the public API.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <cstdint>
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

// A FIFO of records (a partition's read-ahead buffer). Unlike std::deque, whose blocks hold
// only three records of this size (an allocation every three records), it keeps its records in
// one vector and reuses that vector's memory: a catch-up read moves millions of records
// through it per second.
class RecordQueue {
 public:
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  ConsumedRecord& front() { return items_[head_]; }

  void push_back(ConsumedRecord&& record) {
    // Drop the taken prefix once it is at least half of the vector: each record is moved at
    // most once more by this, on average.
    if (head_ > 0 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
    items_.push_back(std::move(record));
  }

  // REQUIRES: !empty(). The front record should have been moved from: its slot is only
  // destroyed when the vector's prefix is dropped or the queue is destroyed.
  void pop_front() {
    if (++head_ == items_.size()) {
      items_.clear();  // keeps the capacity
      head_ = 0;
    }
  }

 private:
  std::vector<ConsumedRecord> items_;
  size_t head_ = 0;  // items_[0, head_) were taken
};

// Moves up to `max` records out of `queues` into the result, fairly: starting at queue
// `first` (modulo the count) and going round, each non-empty queue gives up to
// max(1, max / non-empty queues) records per round, in its own order.
std::vector<ConsumedRecord> TakeFairly(const std::vector<RecordQueue*>& queues, size_t first,
                                       size_t max);

// "t:0, t:3, u:1".
std::string FormatPartitions(const std::vector<TopicPartition>& partitions);

// Bytes a record holds in memory, roughly (key, value, headers, overhead).
int64_t RecordBytes(const ConsumedRecord& record);

}  // namespace evlog::client::consumer_internal
