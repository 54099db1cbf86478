// GroupAdmin: the operator's view and controls of consumer groups, over evlog's GroupService
// (list, describe with lag, reset offsets, delete).
//
// Example (how far behind is group "billing", and rewind it by an hour on "orders"):
//   auto groups = evlog::client::GroupAdmin::Create("127.0.0.1:7070");
//   auto d = groups->DescribeGroup("billing");
//   for (const auto& p : d->partitions) std::cout << p.topic << ":" << p.partition << " "
//                                                  << p.lag << "\n";
//   auto offsets = groups->ResetOffsets(
//       "billing", "orders", std::nullopt,
//       {.kind = evlog::client::ResetTarget::kToTime, .value = now_ms - 3600000}, false);
//
// Every call has a deadline (AdminOptions::timeout) and returns the server's status code and
// message unchanged (grpc_status.h); the codes are those of groups.proto.
//
// Thread safety: every method may be called from any thread concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/admin.h"
#include "client/consumer.h"

namespace evlog::client {

struct GroupMemberInfo {
  std::string member_id;
  std::string client_id;
  std::vector<std::string> topics;
  std::vector<TopicPartition> assignment;  // partitions owned
  int64_t last_heartbeat_ms = 0;           // ms since the epoch
};

struct GroupPartitionInfo {
  TopicPartition tp;
  std::string owner;              // member id; empty if unassigned
  int64_t committed_offset = -1;  // -1: nothing committed
  int64_t commit_time_ms = 0;     // 0: never
  int64_t start_offset = 0;
  int64_t end_offset = 0;
  int64_t lag = 0;  // end - committed (or - start without a commit or below the start)
};

struct GroupInfo {
  std::string group;
  int64_t generation = 0;
  OffsetReset auto_offset_reset = OffsetReset::kEarliest;
  std::vector<GroupMemberInfo> members;
  std::vector<GroupPartitionInfo> partitions;  // sorted by topic and partition
};

// Where ResetOffsets moves a group's committed offsets.
struct ResetTarget {
  enum Kind { kToOffset, kToEarliest, kToLatest, kToTime, kShiftBy };
  Kind kind = kToEarliest;
  int64_t value = 0;  // kToOffset: the offset; kToTime: ms since the epoch; kShiftBy: +/- N
};

class GroupAdmin {
 public:
  // A client for the server at `target` ("HOST:PORT"); connects lazily.
  static std::unique_ptr<GroupAdmin> Create(const std::string& target,
                                            const AdminOptions& options = {});
  static std::unique_ptr<GroupAdmin> Create(std::shared_ptr<grpc::Channel> channel,
                                            const AdminOptions& options = {});
  virtual ~GroupAdmin() = default;

  // Names of all groups, sorted. Errors: transport errors.
  virtual absl::StatusOr<std::vector<std::string>> ListGroups() = 0;

  // Members, generation and per-partition offsets and lag. Errors: NOT_FOUND (no such group),
  // INVALID_ARGUMENT, transport errors.
  virtual absl::StatusOr<GroupInfo> DescribeGroup(const std::string& group) = 0;

  // Sets the group's committed offsets on `topic`, for `partition` or (nullopt) every
  // partition; returns the new (partition, offset) pairs. Refused with FAILED_PRECONDITION
  // while the group has live members unless `force` (they are removed and rejoin).
  // Errors: INVALID_ARGUMENT, NOT_FOUND (topic), OUT_OF_RANGE (no such partition, or an offset
  // outside [start, end]), FAILED_PRECONDITION, transport errors.
  virtual absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>> ResetOffsets(
      const std::string& group, const std::string& topic, std::optional<int32_t> partition,
      const ResetTarget& target, bool force) = 0;

  // Deletes the group's committed offsets and state. FAILED_PRECONDITION while it has live
  // members unless `force`. Errors: NOT_FOUND, transport errors.
  virtual absl::Status DeleteGroup(const std::string& group, bool force) = 0;
};

}  // namespace evlog::client
