// GroupServiceImpl: evlog.v1.GroupService (groups.proto) over a coordinator::GroupCoordinator,
// on gRPC's synchronous API: every call is short (an in-memory update of the group and at most
// one synced metadata write). Each method validates the request's shape (names, the reset
// target, enum values), calls the coordinator, and maps its absl::Status through
// status_mapping.h. Membership, assignment, fencing and durability live in the coordinator;
// the contract is groups.proto.
//
// Thread safety: gRPC calls the methods from many threads; the coordinator and the drain
// controller are thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include "coordinator/group_coordinator.h"
#include "evlog/v1/groups.grpc.pb.h"
#include "server/drain.h"

namespace evlog::server {

class GroupServiceImpl final : public evlog::v1::GroupService::Service {
 public:
  // `coordinator` and `drain` are not owned and must outlive the gRPC server.
  GroupServiceImpl(coordinator::GroupCoordinator* coordinator, DrainController* drain);

  grpc::Status JoinGroup(grpc::ServerContext* context, const evlog::v1::JoinGroupRequest* request,
                         evlog::v1::JoinGroupResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context, const evlog::v1::HeartbeatRequest* request,
                         evlog::v1::HeartbeatResponse* response) override;
  grpc::Status LeaveGroup(grpc::ServerContext* context, const evlog::v1::LeaveGroupRequest* request,
                          evlog::v1::LeaveGroupResponse* response) override;
  grpc::Status CommitOffsets(grpc::ServerContext* context,
                             const evlog::v1::CommitOffsetsRequest* request,
                             evlog::v1::CommitOffsetsResponse* response) override;
  grpc::Status ListGroups(grpc::ServerContext* context, const evlog::v1::ListGroupsRequest* request,
                          evlog::v1::ListGroupsResponse* response) override;
  grpc::Status DescribeGroup(grpc::ServerContext* context,
                             const evlog::v1::DescribeGroupRequest* request,
                             evlog::v1::DescribeGroupResponse* response) override;
  grpc::Status ResetOffsets(grpc::ServerContext* context,
                            const evlog::v1::ResetOffsetsRequest* request,
                            evlog::v1::ResetOffsetsResponse* response) override;
  grpc::Status DeleteGroup(grpc::ServerContext* context,
                           const evlog::v1::DeleteGroupRequest* request,
                           evlog::v1::DeleteGroupResponse* response) override;

 private:
  coordinator::GroupCoordinator* const coordinator_;
  DrainController* const drain_;
};

}  // namespace evlog::server
