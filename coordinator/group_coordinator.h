// GroupCoordinator: consumer-group membership, sticky partition assignment, session expiry,
// ownership-checked offset commits, and the operator's reset/delete, over a LogStore.
// No gRPC here: the server's group service is a thin translation over this class.
//
// Semantics (the proto and README repeat them for users):
//   - A group is a name. Members join for a set of topics; the coordinator assigns each
//     partition of those topics to exactly one live member and bumps the group's generation
//     on every change of membership or assignment.
//   - Assignment is sticky: a partition stays with its owner while the owner lives and
//     subscribes to its topic; a rebalance moves only as many partitions as balance requires
//     (loads differ by at most one when all members subscribe to the same topics). Members
//     learn of changes through their heartbeats; members whose partitions did not move keep
//     working.
//   - A member that does not heartbeat within its session timeout (default 10 s) is removed
//     and its partitions go to others.
//   - A committed offset (per group, topic, partition) is the next offset the group will
//     read. A commit is accepted only from the member that currently owns the partition
//     (with a generation not older than the one in which it got the partition); anything else
//     is FAILED_PRECONDITION, so a zombie cannot move the group's offsets.
//   - A member starting on a partition gets its start offset: the committed offset, or, with
//     none, the earliest or latest offset per the group's auto_offset_reset (default
//     earliest). A committed offset below the partition's start offset (retention trimmed the
//     data) is reported as trimmed and reading starts at the start offset.
//   - Delivery is at least once: a member that dies between processing and committing
//     causes redelivery of what it had not committed.
//   - Group state (generation, members, assignment, configuration) is stored durably with
//     every change, so a restarted server keeps generations rising and recognises members
//     that keep heartbeating (their sessions restart at the server's start).
//
// Thread safety: every method may be called from any thread; one mutex guards all groups.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/log_store.h"

namespace evlog::coordinator {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

enum class OffsetReset { kEarliest, kLatest };

struct JoinRequest {
  std::string group;
  std::string member_id;  // empty: a new member (the coordinator names it)
  std::string client_id;  // free text shown by describe (e.g. host:pid)
  std::vector<std::string> topics;
  absl::Duration session_timeout = absl::Seconds(10);
  // Used when the group is first created; later joins cannot change it.
  OffsetReset auto_offset_reset = OffsetReset::kEarliest;
};

// Where a member starts reading a partition it owns.
struct PartitionStart {
  TopicPartition tp;
  int64_t offset = 0;
  bool committed = false;  // offset comes from a commit (else from auto_offset_reset)
  bool trimmed = false;    // the committed offset was below the start offset
  int64_t assigned_generation = 0;
};

// What a member is told on join and on every heartbeat.
struct MemberView {
  std::string member_id;
  int64_t generation = 0;                  // the group's current generation
  std::vector<PartitionStart> assignment;  // sorted by topic, partition
};

struct MemberDescription {
  std::string member_id;
  std::string client_id;
  std::vector<std::string> topics;
  std::vector<TopicPartition> assignment;
  absl::Time last_heartbeat;
};

struct PartitionDescription {
  TopicPartition tp;
  std::string owner;       // member id, empty if unassigned
  int64_t committed = -1;  // -1: nothing committed
  int64_t commit_time_ms = 0;
  int64_t start_offset = 0;
  int64_t end_offset = 0;
  int64_t lag = 0;  // end - committed, or end - start with no commit
};

struct GroupDescription {
  std::string group;
  int64_t generation = 0;
  OffsetReset auto_offset_reset = OffsetReset::kEarliest;
  std::vector<MemberDescription> members;
  std::vector<PartitionDescription> partitions;  // subscribed or committed ones
};

// How to reset a group's offsets.
struct ResetSpec {
  enum Kind { kToOffset, kToEarliest, kToLatest, kToTime, kShiftBy } kind = kToEarliest;
  int64_t value = 0;  // the offset, the time (ms since epoch) or the shift
};

class GroupCoordinator {
 public:
  // `store` must outlive the coordinator. Loads stored group state; starts a thread that
  // expires members whose sessions ran out.
  GroupCoordinator(
      storage::LogStore* store, std::function<absl::Time()> clock = [] { return absl::Now(); });
  ~GroupCoordinator();

  // Joins (or rejoins) a member and rebalances. Errors: INVALID_ARGUMENT (bad group name,
  // no topics, session timeout outside 100 ms..10 min), NOT_FOUND (a topic does not exist),
  // FAILED_PRECONDITION (member_id given but unknown: join again without it).
  absl::StatusOr<MemberView> Join(const JoinRequest& request);

  // Keeps a member's session alive and tells it its current assignment.
  // Errors: FAILED_PRECONDITION (unknown member: it expired or was removed; join again).
  absl::StatusOr<MemberView> Heartbeat(const std::string& group, const std::string& member_id);

  // Removes a member now (its partitions go to others). Errors: FAILED_PRECONDITION.
  absl::Status Leave(const std::string& group, const std::string& member_id);

  // Commits offsets for partitions the member owns. Errors: NOT_FOUND (no such topic),
  // OUT_OF_RANGE (no such partition), FAILED_PRECONDITION (unknown member, not the owner, or a
  // generation older than the ownership), and the store's (OUT_OF_RANGE for an offset beyond
  // the end, INVALID_ARGUMENT for an empty list).
  absl::Status Commit(const std::string& group, const std::string& member_id, int64_t generation,
                      const std::string& topic,
                      const std::vector<std::pair<int32_t, int64_t>>& offsets);

  std::vector<std::string> ListGroups();

  // Errors: NOT_FOUND (no such group).
  absl::StatusOr<GroupDescription> Describe(const std::string& group);

  // Sets the group's committed offsets on `topic` (one partition, or all when partition < 0).
  // Refused with FAILED_PRECONDITION while the group has live members unless `force`; with
  // force, live members are removed (they rejoin and start from the new offsets). Returns the
  // new offsets. Errors: NOT_FOUND (topic), OUT_OF_RANGE (no such partition, or to an offset
  // outside the partition's range). A reset that fails changes nothing (members stay).
  absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>> ResetOffsets(const std::string& group,
                                                                        const std::string& topic,
                                                                        int32_t partition,
                                                                        const ResetSpec& spec,
                                                                        bool force);

  // Deletes a group's offsets and state. FAILED_PRECONDITION while it has live members
  // unless `force`. Errors: NOT_FOUND.
  absl::Status DeleteGroup(const std::string& group, bool force);

  // Removes members whose session has expired; the expiry thread calls it, tests may too.
  void ExpireMembers();

 private:
  struct Member {
    std::string id;
    std::string client_id;
    std::vector<std::string> topics;
    absl::Duration session_timeout;
    absl::Time last_heartbeat;
  };
  struct Owner {
    std::string member_id;
    int64_t generation = 0;  // generation in which the member got the partition
  };
  struct Group {
    std::string name;
    int64_t generation = 0;
    OffsetReset auto_offset_reset = OffsetReset::kEarliest;
    std::map<std::string, Member> members;
    std::map<TopicPartition, Owner> owners;
  };

  Group* FindGroup(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Recomputes the assignment; bumps the generation and stores the group if it changed (or
  // if `membership_changed`).
  absl::Status Rebalance(Group& g, bool membership_changed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Store(const Group& g) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<MemberView> View(const Group& g, const std::string& member_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpireLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ExpiryLoop();

  storage::LogStore* const store_;
  const std::function<absl::Time()> clock_;
  absl::Mutex mu_;
  std::map<std::string, Group> groups_ ABSL_GUARDED_BY(mu_);
  uint64_t member_counter_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread expiry_;
};

// The sticky, balanced assignment (exposed for tests). `subscriptions`: member -> topics;
// `partitions`: topic -> partition count; `current`: previous owners. Returns owner per
// partition of every subscribed topic.
std::map<TopicPartition, std::string> AssignPartitions(
    const std::map<std::string, std::vector<std::string>>& subscriptions,
    const std::map<std::string, int32_t>& partitions,
    const std::map<TopicPartition, std::string>& current);

}  // namespace evlog::coordinator
