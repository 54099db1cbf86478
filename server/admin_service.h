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
#include "server/quota.h"
#include "server/server_metrics.h"
#include "server/server_options.h"
#include "storage/log_store.h"

namespace evlog::server {

class AdminServiceImpl final : public evlog::v1::AdminService::Service {
 public:
  // `store`, `router`, `drain`, `quotas` and `metrics` are not owned and must outlive the gRPC
  // server. `options` is copied for DescribeServer. Quota changes go to the store first, then
  // to `quotas` (the live buckets); `quotas` may be null (quotas are then only stored).
  // Topics created and deleted are reported to `metrics`, if not null.
  AdminServiceImpl(storage::LogStore* store, PartitionRouter* router, DrainController* drain,
                   const ServerOptions& options, QuotaEnforcer* quotas = nullptr,
                   ServerMetrics* metrics = nullptr);

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
  // Quota RPCs: in quota_admin.cc.
  grpc::Status AlterTopic(grpc::ServerContext* context, const evlog::v1::AlterTopicRequest* request,
                          evlog::v1::AlterTopicResponse* response) override;
  grpc::Status SetProducerQuota(grpc::ServerContext* context,
                                const evlog::v1::SetProducerQuotaRequest* request,
                                evlog::v1::SetProducerQuotaResponse* response) override;
  grpc::Status DeleteProducerQuota(grpc::ServerContext* context,
                                   const evlog::v1::DeleteProducerQuotaRequest* request,
                                   evlog::v1::DeleteProducerQuotaResponse* response) override;
  grpc::Status ListQuotas(grpc::ServerContext* context, const evlog::v1::ListQuotasRequest* request,
                          evlog::v1::ListQuotasResponse* response) override;

 private:
  storage::LogStore* const store_;
  PartitionRouter* const router_;
  DrainController* const drain_;
  const ServerOptions options_;
  QuotaEnforcer* const quotas_;
  ServerMetrics* const metrics_;
};

// Fills a TopicDescription from the store's description (shared by the admin RPCs).
void TopicToProto(const storage::TopicInfo& info, evlog::v1::TopicDescription* out);

}  // namespace evlog::server
