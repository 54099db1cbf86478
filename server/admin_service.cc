#include "server/admin_service.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/status_mapping.h"
#include "server/validation.h"
#include "spdlog/spdlog.h"

#ifndef EVLOG_VERSION
#define EVLOG_VERSION "unknown"
#endif

namespace evlog::server {

void TopicToProto(const storage::TopicInfo& info, evlog::v1::TopicDescription* out) {
  out->set_name(info.name);
  out->set_partition_count(info.config.partitions);
  out->set_retention_ms(info.config.retention_ms);
  out->set_retention_bytes(info.config.retention_bytes);
  out->set_created_ms(info.created_ms);
  for (const storage::PartitionInfo& p : info.partitions) {
    evlog::v1::PartitionDescription* partition = out->add_partitions();
    partition->set_partition(p.partition);
    partition->set_start_offset(p.start_offset);
    partition->set_end_offset(p.end_offset);
    partition->set_bytes(static_cast<int64_t>(p.bytes));
  }
  out->mutable_quota()->set_bytes_per_sec(info.config.quota.bytes_per_sec);
  out->mutable_quota()->set_records_per_sec(info.config.quota.records_per_sec);
}

namespace {

// 0 and -1 both mean "no limit" on the wire; storage spells it -1.
int64_t RetentionOrUnlimited(int64_t value) { return value == 0 ? -1 : value; }

}  // namespace

AdminServiceImpl::AdminServiceImpl(storage::LogStore* store, PartitionRouter* router,
                                   DrainController* drain, const ServerOptions& options,
                                   QuotaEnforcer* quotas, ServerMetrics* metrics)
    : store_(store),
      router_(router),
      drain_(drain),
      options_(options),
      quotas_(quotas),
      metrics_(metrics) {}

grpc::Status AdminServiceImpl::CreateTopic(grpc::ServerContext* context,
                                           const evlog::v1::CreateTopicRequest* request,
                                           evlog::v1::CreateTopicResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateTopicName(request->name()); !s.ok()) return ToGrpcStatus(s);
  storage::TopicConfig config;
  config.partitions = request->partitions() == 0 ? 1 : request->partitions();
  if (config.partitions < 1 || config.partitions > storage::kMaxPartitions) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("partitions is ", request->partitions(), "; a topic has 1 to ",
                     storage::kMaxPartitions, " partitions")));
  }
  config.retention_ms = RetentionOrUnlimited(request->retention_ms());
  config.retention_bytes = RetentionOrUnlimited(request->retention_bytes());
  if (config.retention_ms < -1 || config.retention_bytes < -1) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "retention_ms ", request->retention_ms(), " and retention_bytes ",
        request->retention_bytes(), ": each must be positive, or 0 or -1 for no limit")));
  }
  config.quota = {.bytes_per_sec = request->quota().bytes_per_sec(),
                  .records_per_sec = request->quota().records_per_sec()};
  if (config.quota.bytes_per_sec < 0 || config.quota.records_per_sec < 0) {
    return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat(
        "quota of ", config.quota.bytes_per_sec, " bytes/s and ", config.quota.records_per_sec,
        " records/s: rates must be >= 0 (0: unlimited)")));
  }
  router_->Forget(request->name());
  if (absl::Status s = store_->CreateTopic(request->name(), config); !s.ok()) {
    return ToGrpcStatus(s);
  }
  spdlog::info("created topic {} with {} partitions", request->name(), config.partitions);
  if (quotas_ != nullptr) quotas_->SetTopicQuota(request->name(), config.quota);
  if (metrics_ != nullptr) metrics_->TopicCreated(request->name());
  absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(request->name());
  if (!info.ok()) return ToGrpcStatus(info.status());
  TopicToProto(*info, response->mutable_topic());
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::DeleteTopic(grpc::ServerContext* context,
                                           const evlog::v1::DeleteTopicRequest* request,
                                           evlog::v1::DeleteTopicResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateTopicName(request->name()); !s.ok()) return ToGrpcStatus(s);
  absl::Status s = store_->DeleteTopic(request->name());
  router_->Forget(request->name());
  if (s.ok() && quotas_ != nullptr) quotas_->RemoveTopic(request->name());
  if (s.ok() && metrics_ != nullptr) metrics_->TopicDeleted(request->name());
  if (s.ok()) spdlog::info("deleted topic {}", request->name());
  return ToGrpcStatus(s);
}

grpc::Status AdminServiceImpl::ListTopics(grpc::ServerContext* context,
                                          const evlog::v1::ListTopicsRequest* request,
                                          evlog::v1::ListTopicsResponse* response) {
  DrainController::CallScope call(drain_);
  for (std::string& name : store_->ListTopics()) response->add_names(std::move(name));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::DescribeTopic(grpc::ServerContext* context,
                                             const evlog::v1::DescribeTopicRequest* request,
                                             evlog::v1::DescribeTopicResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateTopicName(request->name()); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(request->name());
  if (!info.ok()) return ToGrpcStatus(info.status());
  TopicToProto(*info, response->mutable_topic());
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::OffsetForTimestamp(
    grpc::ServerContext* context, const evlog::v1::OffsetForTimestampRequest* request,
    evlog::v1::OffsetForTimestampResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateTopicName(request->topic()); !s.ok()) return ToGrpcStatus(s);
  if (request->timestamp_ms() < 0) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("timestamp_ms ", request->timestamp_ms(),
                     " is negative; give milliseconds since the Unix epoch")));
  }
  std::vector<int32_t> partitions(request->partitions().begin(), request->partitions().end());
  for (int32_t p : partitions) {
    if (p < 0) {
      return ToGrpcStatus(absl::InvalidArgumentError(
          absl::StrCat("partition ", p, " is invalid; give partitions >= 0")));
    }
  }
  if (partitions.empty()) {
    absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(request->topic());
    if (!info.ok()) return ToGrpcStatus(info.status());
    for (int32_t p = 0; p < info->config.partitions; ++p) partitions.push_back(p);
  }
  for (int32_t p : partitions) {
    absl::StatusOr<int64_t> offset =
        store_->OffsetForTimestamp(request->topic(), p, request->timestamp_ms());
    if (!offset.ok()) return ToGrpcStatus(offset.status());
    evlog::v1::PartitionOffset* out = response->add_offsets();
    out->set_partition(p);
    out->set_offset(*offset);
  }
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::DescribeServer(grpc::ServerContext* context,
                                              const evlog::v1::DescribeServerRequest* request,
                                              evlog::v1::DescribeServerResponse* response) {
  DrainController::CallScope call(drain_);
  response->set_version(EVLOG_VERSION);
  response->set_max_record_bytes(options_.limits.max_record_bytes);
  response->set_max_batch_bytes(options_.limits.max_batch_bytes);
  response->set_max_batch_records(options_.limits.max_batch_records);
  response->set_max_response_bytes(MaxResponseBytes(options_.limits));
  response->set_max_inflight_per_stream(options_.limits.max_inflight_per_stream);
  response->set_fsync(options_.fsync);
  return grpc::Status::OK;
}

}  // namespace evlog::server
