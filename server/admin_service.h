// AdminServiceImpl: evlog.v1.AdminService over a LogStore, on gRPC's synchronous API (each
// call is short: a metadata write or lookup). Validates, calls the store, maps the status.
// The contract is evlog.proto.
//
// Thread safety: gRPC calls the methods from many threads; all dependencies are thread-safe.
#pragma once

#include <string>

#include <grpcpp/grpcpp.h>

#include "evlog/v1/evlog.grpc.pb.h"
#include "server/drain.h"
#include "server/partition_router.h"
#include "server/server_options.h"
#include "storage/log_store.h"

namespace evlog::server {

class AdminServiceImpl final : public evlog::v1::AdminService::Service {
 public:
  // `store`, `router` and `drain` are not owned and must outlive the gRPC server. `options` is
  // copied for DescribeServer.
  AdminServiceImpl(storage::LogStore* store, PartitionRouter* router, DrainController* drain,
                   const ServerOptions& options);

  grpc::Status CreateTopic(grpc::ServerContext* context,
                           const evlog::v1::CreateTopicRequest* request,
                           evlog::v1::CreateTopicResponse* response) override;
  grpc::Status DeleteTopic(grpc::ServerContext* context,
                           const evlog::v1::DeleteTopicRequest* request,
                           evlog::v1::DeleteTopicResponse* response) override;
  grpc::Status ListTopics(grpc::ServerContext* context, const evlog::v1::ListTopicsRequest* request,
                          evlog::v1::ListTopicsResponse* response) override;
  grpc::Status DescribeTopic(grpc::ServerContext* context,
                             const evlog::v1::DescribeTopicRequest* request,
                             evlog::v1::DescribeTopicResponse* response) override;
  grpc::Status OffsetForTimestamp(grpc::ServerContext* context,
                                  const evlog::v1::OffsetForTimestampRequest* request,
                                  evlog::v1::OffsetForTimestampResponse* response) override;
  grpc::Status DescribeServer(grpc::ServerContext* context,
                              const evlog::v1::DescribeServerRequest* request,
                              evlog::v1::DescribeServerResponse* response) override;

 private:
  storage::LogStore* const store_;
  PartitionRouter* const router_;
  DrainController* const drain_;
  const ServerOptions options_;
};

}  // namespace evlog::server
