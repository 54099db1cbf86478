// Consumer: a member of a consumer group. It joins the group for a set of topics, keeps its
// session alive with background heartbeats, reads the partitions the server assigns to it
// (one long-poll Read stream each, from the offset the server says), hands their records to
// the application through Poll, and commits the group's offsets.
//
// Example (the commit-after-processing pattern, which auto-commit makes the default):
//   auto consumer = evlog::client::Consumer::Create(
//       "127.0.0.1:7070", {.group = "billing", .topics = {"orders"}});
//   if (!consumer.ok()) return consumer.status();
//   while (running) {
//     auto records = (*consumer)->Poll(500, absl::Now() + absl::Seconds(1));
//     if (!records.ok()) return records.status();
//     for (const auto& r : *records) Process(r);  // committed by the next Poll (or Close)
//   }
//   return (*consumer)->Close();  // commits what the last Poll returned, leaves the group
//
// Commit semantics. The consumer tracks, per partition, the position *handed out*: one past
// the last record Poll returned. A commit sends these positions (never records that were only
// fetched ahead). With auto_commit, each Poll first commits what the previous Polls handed
// out, so a record counts as processed once the application asks for more; Close commits the
// last batch. Without auto_commit the application calls Commit() after processing. Either way
// delivery is at least once: if the process dies, the group re-delivers what was handed out
// but not committed (at most that), and nothing that was committed is delivered again.
//
// Reassignment. Every heartbeat answer carries the member's assignment. A partition that
// disappears (or comes back with a newer assignment generation, i.e. it was someone else's in
// between) is revoked at once: its Read stream is cancelled and records fetched but not yet
// handed out are dropped. What was handed out but not committed is committed at the next
// commit if the server still allows it; FAILED_PRECONDITION means another member owns it and
// will read from the group's committed offset, so the position is dropped (the records are
// delivered again, to the new owner). A new partition is read from the start offset in the
// answer (the group's committed offset, or earliest/latest). A heartbeat answered with
// FAILED_PRECONDITION (unknown member: the session expired, or an operator forced a reset)
// drops every partition and joins the group again as a new member.
//
// Deadlines: every unary call (join, heartbeat, commit, leave) has one (call_timeout;
// heartbeats at most the session timeout); Read streams are cancelled after
// reader.idle_timeout without any response (the server sends heartbeats while idle).
//
// Thread safety: Poll, Commit and Close are called by one application thread at a time (they
// are not meant to run concurrently with each other). Assignment, member_id, generation,
// CommittedOffsets and Stats may be called from any thread. The consumer runs a heartbeat
// thread and one reader thread per assigned partition.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/reader.h"
#include "client/record.h"

namespace evlog::client {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

// Where partitions without a committed offset start (the group's first Join decides).
enum class OffsetReset { kEarliest, kLatest };

// A partition the server assigned to this member, and where reading starts.
struct AssignedPartition {
  TopicPartition tp;
  int64_t start_offset = 0;         // the committed offset, or earliest/latest without one
  bool committed = false;           // start_offset is the group's committed offset
  bool trimmed = false;             // the committed offset was below the partition's start offset
  int64_t assigned_generation = 0;  // the group generation in which this member got it
  bool operator==(const AssignedPartition&) const = default;
};

// A change of this member's assignment, as told to ConsumerOptions::on_assignment.
struct AssignmentChange {
  int64_t generation = 0;
  std::string member_id;                    // empty after the membership was lost
  std::vector<AssignedPartition> assigned;  // newly assigned, with their start offsets
  std::vector<TopicPartition> revoked;      // no longer read by this member
  std::vector<TopicPartition> assignment;   // the whole assignment after the change, sorted
  bool membership_lost = false;             // the server no longer knew the member; it joins again
};

struct ConsumerOptions {
  // The group to join ([A-Za-z0-9._-]{1,249}). Required.
  std::string group;
  // The topics to consume; at least one; each must exist.
  std::vector<std::string> topics;
  // Shown by `evlog group describe`; default "HOSTNAME:PID".
  std::string client_id;
  // The server removes this member if it does not heartbeat for this long, and gives its
  // partitions to others. Shorter: a dead consumer's partitions move sooner; longer: a paused
  // (GC, SIGSTOP, slow disk) consumer keeps them. 100 ms .. 10 min. Default: 10 s.
  absl::Duration session_timeout = absl::Seconds(10);
  // Time between heartbeats; zero: a third of session_timeout. Must be below it. Reassignments
  // are noticed within about this long.
  absl::Duration heartbeat_interval = absl::ZeroDuration();
  // Where partitions without a committed offset start, if this member creates the group.
  // Default: earliest (nothing that is still stored is skipped).
  OffsetReset auto_offset_reset = OffsetReset::kEarliest;
  // Commit what earlier Polls handed out at the start of each Poll and in Close. Without it,
  // call Commit() after processing. Default: true.
  bool auto_commit = true;
  // With auto_commit, commit at most this often (Close always commits). Zero: at every Poll
  // that has something new to commit, which keeps re-delivery after a crash to the last batch.
  // Default: 0.
  absl::Duration auto_commit_interval = absl::ZeroDuration();
  // Deadline of each join, commit and leave call (and of heartbeats, capped at the session
  // timeout). Default: 30 s.
  absl::Duration call_timeout = absl::Seconds(30);
  // If the server cannot be reached (heartbeats or joins failing with UNAVAILABLE,
  // DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED) for this long, the consumer fails: Poll returns that
  // error. Default: never (keep retrying; partitions are dropped once the session must have
  // expired and rejoined when the server answers again).
  absl::Duration give_up_after = absl::InfiniteDuration();
  // Read-ahead per partition: the reader thread stops fetching while this many bytes of
  // records wait to be handed out. Default: 4 MiB.
  int64_t max_buffered_bytes_per_partition = 4 << 20;
  // Read streams: idle deadline and server heartbeat interval (see reader.h).
  ReaderOptions reader;
  // Called after each change of the assignment, on the consumer's heartbeat thread, without
  // locks held: it may call Assignment() and the other getters but must not block for long or
  // call Poll/Commit/Close. Optional.
  std::function<void(const AssignmentChange&)> on_assignment;
};

// Counters since creation.
struct ConsumerStats {
  int64_t records_delivered = 0;  // returned by Poll
  int64_t commits = 0;            // successful CommitOffsets calls
  int64_t partitions_lost = 0;    // revoked with handed-out records the server refused to commit
  int64_t rebalances = 0;         // assignment changes seen
  int64_t rejoins = 0;            // joins after the membership was lost
  int64_t read_retries = 0;       // Read streams reopened after an error
};

class Consumer {
 public:
  // Joins the group (one JoinGroup call, with call_timeout) and starts reading its assignment.
  // Errors: INVALID_ARGUMENT (options: no group or topics, bad session or heartbeat timing;
  // or the server's: bad names); NOT_FOUND (a topic does not exist); UNAVAILABLE /
  // DEADLINE_EXCEEDED (server unreachable); UNIMPLEMENTED (a server without consumer groups).
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(const std::string& target,
                                                          ConsumerOptions options);
  static absl::StatusOr<std::unique_ptr<Consumer>> Create(std::shared_ptr<grpc::Channel> channel,
                                                          ConsumerOptions options);

  // Closes (as Close) if that was not done.
  virtual ~Consumer() = default;

  // With auto_commit, first commits what earlier Polls handed out (a failure to reach the
  // server is retried at the next Poll; lost partitions are dropped). Then waits until
  // records are available or `deadline` passes, and returns up to `max_records` (>= 1),
  // taken fairly across partitions, each partition's in offset order. Empty at the deadline.
  // Errors: INVALID_ARGUMENT (max_records < 1); FAILED_PRECONDITION (closed); the error that
  // made the consumer fail: the server unreachable for give_up_after, a join refused
  // (NOT_FOUND: a topic was deleted), a read failing with DATA_LOSS or INTERNAL.
  virtual absl::StatusOr<std::vector<ConsumedRecord>> Poll(size_t max_records,
                                                           absl::Time deadline) = 0;

  // Commits, durably, the handed-out position of every partition that moved since its last
  // commit, then returns. Partitions revoked with uncommitted positions are tried too.
  // Returns OK if everything pending was committed (or nothing was pending).
  // Errors: FAILED_PRECONDITION naming the partitions that another member owns now (their
  // records since the last commit will be delivered again; everything else was committed);
  // UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED after retrying until call_timeout
  // (the positions stay pending); FAILED_PRECONDITION after Close.
  virtual absl::Status Commit() = 0;

  // Stops reading, commits (with auto_commit) what was handed out, leaves the group (its
  // partitions go to other members at once) and stops the threads. Idempotent: later calls
  // return OK. Returns the commit's error, if any; a leave refused because the session had
  // already expired is not an error.
  virtual absl::Status Close() = 0;

  // The partitions this member reads now, sorted.
  virtual std::vector<TopicPartition> Assignment() = 0;
  // The member id and group generation of the current membership (empty / 0 while joining).
  virtual std::string member_id() = 0;
  virtual int64_t generation() = 0;
  // The offsets this consumer has committed successfully, per partition (the latest each),
  // including partitions it no longer owns.
  virtual std::map<TopicPartition, int64_t> CommittedOffsets() = 0;
  virtual ConsumerStats Stats() = 0;
};

}  // namespace evlog::client
