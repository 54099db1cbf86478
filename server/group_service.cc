#include "server/group_service.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "server/status_mapping.h"
#include "server/validation.h"
#include "spdlog/spdlog.h"
#include "storage/log_store.h"

namespace evlog::server {
namespace {

// OK if `name` is a valid group name (the topic name rules); else INVALID_ARGUMENT.
absl::Status ValidateGroupName(const std::string& name) {
  if (storage::IsValidTopicName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("invalid group name \"", absl::CHexEscape(name), "\" (", name.size(),
                   " bytes); a group name is 1 to 249 characters from [A-Za-z0-9._-]"));
}

absl::StatusOr<coordinator::OffsetReset> FromProto(evlog::v1::AutoOffsetReset reset) {
  switch (reset) {
    case evlog::v1::AUTO_OFFSET_RESET_UNSPECIFIED:
    case evlog::v1::AUTO_OFFSET_RESET_EARLIEST:
      return coordinator::OffsetReset::kEarliest;
    case evlog::v1::AUTO_OFFSET_RESET_LATEST:
      return coordinator::OffsetReset::kLatest;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("auto_offset_reset ", static_cast<int>(reset),
                       " is unknown; use AUTO_OFFSET_RESET_EARLIEST or AUTO_OFFSET_RESET_LATEST"));
  }
}

evlog::v1::AutoOffsetReset ToProto(coordinator::OffsetReset reset) {
  return reset == coordinator::OffsetReset::kLatest ? evlog::v1::AUTO_OFFSET_RESET_LATEST
                                                    : evlog::v1::AUTO_OFFSET_RESET_EARLIEST;
}

void ToProto(const std::vector<coordinator::PartitionStart>& assignment,
             google::protobuf::RepeatedPtrField<evlog::v1::PartitionAssignment>* out) {
  for (const coordinator::PartitionStart& start : assignment) {
    evlog::v1::PartitionAssignment* a = out->Add();
    a->set_topic(start.tp.topic);
    a->set_partition(start.tp.partition);
    a->set_start_offset(start.offset);
    a->set_committed(start.committed);
    a->set_trimmed(start.trimmed);
    a->set_assigned_generation(start.assigned_generation);
  }
}

// The reset a request asks for. Errors: INVALID_ARGUMENT (no target, a boolean target set to
// false, a negative time).
absl::StatusOr<coordinator::ResetSpec> ResetSpecFrom(const evlog::v1::ResetOffsetsRequest& r) {
  using Spec = coordinator::ResetSpec;
  using Request = evlog::v1::ResetOffsetsRequest;
  switch (r.target_case()) {
    case Request::kToOffset:
      return Spec{.kind = Spec::kToOffset, .value = r.to_offset()};
    case Request::kToEarliest:
      if (!r.to_earliest()) break;
      return Spec{.kind = Spec::kToEarliest};
    case Request::kToLatest:
      if (!r.to_latest()) break;
      return Spec{.kind = Spec::kToLatest};
    case Request::kToTimestampMs:
      if (r.to_timestamp_ms() < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("to_timestamp_ms ", r.to_timestamp_ms(),
                         " is negative; give milliseconds since the Unix epoch"));
      }
      return Spec{.kind = Spec::kToTime, .value = r.to_timestamp_ms()};
    case Request::kShiftBy:
      return Spec{.kind = Spec::kShiftBy, .value = r.shift_by()};
    case Request::TARGET_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "give exactly one reset target: to_offset, to_earliest: true, to_latest: true, "
      "to_timestamp_ms or shift_by");
}

}  // namespace

GroupServiceImpl::GroupServiceImpl(coordinator::GroupCoordinator* coordinator,
                                   DrainController* drain)
    : coordinator_(coordinator), drain_(drain) {}

grpc::Status GroupServiceImpl::JoinGroup(grpc::ServerContext* context,
                                         const evlog::v1::JoinGroupRequest* request,
                                         evlog::v1::JoinGroupResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateGroupName(request->group()); !s.ok()) return ToGrpcStatus(s);
  if (request->topics().empty()) {
    return ToGrpcStatus(
        absl::InvalidArgumentError("JoinGroup needs at least one topic to consume"));
  }
  for (const std::string& topic : request->topics()) {
    if (absl::Status s = ValidateTopicName(topic); !s.ok()) return ToGrpcStatus(s);
  }
  absl::StatusOr<coordinator::OffsetReset> reset = FromProto(request->auto_offset_reset());
  if (!reset.ok()) return ToGrpcStatus(reset.status());

  coordinator::JoinRequest join{
      .group = request->group(),
      .member_id = request->member_id(),
      .client_id = request->client_id(),
      .topics = std::vector<std::string>(request->topics().begin(), request->topics().end()),
      .auto_offset_reset = *reset};
  // 0 keeps JoinRequest's default (10 s); the coordinator checks the range.
  if (request->session_timeout_ms() != 0) {
    join.session_timeout = absl::Milliseconds(request->session_timeout_ms());
  }
  absl::StatusOr<coordinator::MemberView> view = coordinator_->Join(join);
  if (!view.ok()) return ToGrpcStatus(view.status());
  response->set_member_id(view->member_id);
  response->set_generation(view->generation);
  ToProto(view->assignment, response->mutable_assignment());
  return grpc::Status::OK;
}

grpc::Status GroupServiceImpl::Heartbeat(grpc::ServerContext* context,
                                         const evlog::v1::HeartbeatRequest* request,
                                         evlog::v1::HeartbeatResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateGroupName(request->group()); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<coordinator::MemberView> view =
      coordinator_->Heartbeat(request->group(), request->member_id());
  if (!view.ok()) return ToGrpcStatus(view.status());
  response->set_generation(view->generation);
  ToProto(view->assignment, response->mutable_assignment());
  return grpc::Status::OK;
}

grpc::Status GroupServiceImpl::LeaveGroup(grpc::ServerContext* context,
                                          const evlog::v1::LeaveGroupRequest* request,
                                          evlog::v1::LeaveGroupResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateGroupName(request->group()); !s.ok()) return ToGrpcStatus(s);
  return ToGrpcStatus(coordinator_->Leave(request->group(), request->member_id()));
}

grpc::Status GroupServiceImpl::CommitOffsets(grpc::ServerContext* context,
                                             const evlog::v1::CommitOffsetsRequest* request,
                                             evlog::v1::CommitOffsetsResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateGroupName(request->group()); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = ValidateTopicName(request->topic()); !s.ok()) return ToGrpcStatus(s);
  if (request->offsets().empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError("CommitOffsets has no offsets to commit"));
  }
  std::vector<std::pair<int32_t, int64_t>> offsets;
  offsets.reserve(request->offsets_size());
  for (const evlog::v1::PartitionOffsetCommit& o : request->offsets()) {
    offsets.emplace_back(o.partition(), o.offset());
  }
  return ToGrpcStatus(coordinator_->Commit(request->group(), request->member_id(),
                                           request->generation(), request->topic(), offsets));
}

grpc::Status GroupServiceImpl::ListGroups(grpc::ServerContext* context,
                                          const evlog::v1::ListGroupsRequest* request,
                                          evlog::v1::ListGroupsResponse* response) {
  DrainController::CallScope call(drain_);
  for (std::string& name : coordinator_->ListGroups()) response->add_groups(std::move(name));
  return grpc::Status::OK;
}

grpc::Status GroupServiceImpl::DescribeGroup(grpc::ServerContext* context,
                                             const evlog::v1::DescribeGroupRequest* request,
                                             evlog::v1::DescribeGroupResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateGroupName(request->group()); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<coordinator::GroupDescription> d = coordinator_->Describe(request->group());
  if (!d.ok()) return ToGrpcStatus(d.status());
  response->set_group(d->group);
  response->set_generation(d->generation);
  response->set_auto_offset_reset(ToProto(d->auto_offset_reset));
  for (const coordinator::MemberDescription& m : d->members) {
    evlog::v1::GroupMember* out = response->add_members();
    out->set_member_id(m.member_id);
    out->set_client_id(m.client_id);
    for (const std::string& topic : m.topics) out->add_topics(topic);
    for (const coordinator::TopicPartition& tp : m.assignment) {
      evlog::v1::TopicPartitionRef* ref = out->add_assignment();
      ref->set_topic(tp.topic);
      ref->set_partition(tp.partition);
    }
    out->set_last_heartbeat_ms(absl::ToUnixMillis(m.last_heartbeat));
  }
  for (const coordinator::PartitionDescription& p : d->partitions) {
    evlog::v1::GroupPartition* out = response->add_partitions();
    out->set_topic(p.tp.topic);
    out->set_partition(p.tp.partition);
    out->set_owner(p.owner);
    out->set_committed_offset(p.committed);
    out->set_commit_time_ms(p.commit_time_ms);
    out->set_start_offset(p.start_offset);
    out->set_end_offset(p.end_offset);
    out->set_lag(p.lag);
  }
  return grpc::Status::OK;
}

grpc::Status GroupServiceImpl::ResetOffsets(grpc::ServerContext* context,
                                            const evlog::v1::ResetOffsetsRequest* request,
                                            evlog::v1::ResetOffsetsResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateGroupName(request->group()); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = ValidateTopicName(request->topic()); !s.ok()) return ToGrpcStatus(s);
  // The coordinator spells "every partition" as -1; a negative partition given is an error.
  if (request->has_partition() && request->partition() < 0) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("partition ", request->partition(),
                     " is invalid; give a partition >= 0, or none for every partition")));
  }
  absl::StatusOr<coordinator::ResetSpec> spec = ResetSpecFrom(*request);
  if (!spec.ok()) return ToGrpcStatus(spec.status());
  absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>> offsets = coordinator_->ResetOffsets(
      request->group(), request->topic(), request->has_partition() ? request->partition() : -1,
      *spec, request->force());
  if (!offsets.ok()) return ToGrpcStatus(offsets.status());
  for (const auto& [partition, offset] : *offsets) {
    evlog::v1::PartitionOffsetCommit* out = response->add_offsets();
    out->set_partition(partition);
    out->set_offset(offset);
  }
  spdlog::info("group {}: reset {} offsets of topic {}{}", request->group(), offsets->size(),
               request->topic(), request->force() ? " (forced)" : "");
  return grpc::Status::OK;
}

grpc::Status GroupServiceImpl::DeleteGroup(grpc::ServerContext* context,
                                           const evlog::v1::DeleteGroupRequest* request,
                                           evlog::v1::DeleteGroupResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateGroupName(request->group()); !s.ok()) return ToGrpcStatus(s);
  absl::Status s = coordinator_->DeleteGroup(request->group(), request->force());
  if (s.ok()) {
    spdlog::info("deleted group {}{}", request->group(), request->force() ? " (forced)" : "");
  }
  return ToGrpcStatus(s);
}

}  // namespace evlog::server
