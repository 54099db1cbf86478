#include "client/group_admin.h"

#include <utility>

#include <grpcpp/client_context.h>

#include "client/channel.h"
#include "client/grpc_status.h"
#include "evlog/v1/groups.grpc.pb.h"

namespace evlog::client {
namespace {

namespace v1 = evlog::v1;

GroupInfo FromProto(const v1::DescribeGroupResponse& r) {
  GroupInfo g;
  g.group = r.group();
  g.generation = r.generation();
  g.auto_offset_reset = r.auto_offset_reset() == v1::AUTO_OFFSET_RESET_LATEST
                            ? OffsetReset::kLatest
                            : OffsetReset::kEarliest;
  for (const v1::GroupMember& m : r.members()) {
    GroupMemberInfo info;
    info.member_id = m.member_id();
    info.client_id = m.client_id();
    info.topics.assign(m.topics().begin(), m.topics().end());
    for (const v1::TopicPartitionRef& tp : m.assignment()) {
      info.assignment.push_back({tp.topic(), tp.partition()});
    }
    info.last_heartbeat_ms = m.last_heartbeat_ms();
    g.members.push_back(std::move(info));
  }
  for (const v1::GroupPartition& p : r.partitions()) {
    g.partitions.push_back({.tp = {p.topic(), p.partition()},
                            .owner = p.owner(),
                            .committed_offset = p.committed_offset(),
                            .commit_time_ms = p.commit_time_ms(),
                            .start_offset = p.start_offset(),
                            .end_offset = p.end_offset(),
                            .lag = p.lag()});
  }
  return g;
}

class GroupAdminImpl final : public GroupAdmin {
 public:
  GroupAdminImpl(std::shared_ptr<grpc::Channel> channel, const AdminOptions& options)
      : channel_(std::move(channel)),
        stub_(v1::GroupService::NewStub(channel_)),
        options_(options) {}

  absl::StatusOr<std::vector<std::string>> ListGroups() override {
    v1::ListGroupsRequest request;
    v1::ListGroupsResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s = FromGrpcStatus(stub_->ListGroups(&context, request, &response), &context);
    if (!s.ok()) return s;
    return std::vector<std::string>(response.groups().begin(), response.groups().end());
  }

  absl::StatusOr<GroupInfo> DescribeGroup(const std::string& group) override {
    v1::DescribeGroupRequest request;
    request.set_group(group);
    v1::DescribeGroupResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s = FromGrpcStatus(stub_->DescribeGroup(&context, request, &response), &context);
    if (!s.ok()) return s;
    return FromProto(response);
  }

  absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>> ResetOffsets(
      const std::string& group, const std::string& topic, std::optional<int32_t> partition,
      const ResetTarget& target, bool force) override {
    v1::ResetOffsetsRequest request;
    request.set_group(group);
    request.set_topic(topic);
    if (partition.has_value()) request.set_partition(*partition);
    switch (target.kind) {
      case ResetTarget::kToOffset:
        request.set_to_offset(target.value);
        break;
      case ResetTarget::kToEarliest:
        request.set_to_earliest(true);
        break;
      case ResetTarget::kToLatest:
        request.set_to_latest(true);
        break;
      case ResetTarget::kToTime:
        request.set_to_timestamp_ms(target.value);
        break;
      case ResetTarget::kShiftBy:
        request.set_shift_by(target.value);
        break;
    }
    request.set_force(force);
    v1::ResetOffsetsResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s = FromGrpcStatus(stub_->ResetOffsets(&context, request, &response), &context);
    if (!s.ok()) return s;
    std::vector<std::pair<int32_t, int64_t>> out;
    for (const v1::PartitionOffsetCommit& o : response.offsets()) {
      out.emplace_back(o.partition(), o.offset());
    }
    return out;
  }

  absl::Status DeleteGroup(const std::string& group, bool force) override {
    v1::DeleteGroupRequest request;
    request.set_group(group);
    request.set_force(force);
    v1::DeleteGroupResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    return FromGrpcStatus(stub_->DeleteGroup(&context, request, &response), &context);
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::GroupService::Stub> stub_;
  AdminOptions options_;
};

}  // namespace

std::unique_ptr<GroupAdmin> GroupAdmin::Create(const std::string& target,
                                               const AdminOptions& options) {
  return Create(CreateEvlogChannel(target), options);
}

std::unique_ptr<GroupAdmin> GroupAdmin::Create(std::shared_ptr<grpc::Channel> channel,
                                               const AdminOptions& options) {
  return std::make_unique<GroupAdminImpl>(std::move(channel), options);
}

}  // namespace evlog::client
