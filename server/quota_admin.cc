// AdminServiceImpl's quota RPCs (AlterTopic, SetProducerQuota, DeleteProducerQuota,
// ListQuotas): validate, change the store (durable), then the live buckets (quota.h), so a
// quota in force is always one that survives a restart. Contract: evlog.proto.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/admin_service.h"
#include "server/status_mapping.h"
#include "server/validation.h"
#include "spdlog/spdlog.h"

namespace evlog::server {
namespace {

void QuotaToProto(const storage::Quota& quota, evlog::v1::Quota* out) {
  out->set_bytes_per_sec(quota.bytes_per_sec);
  out->set_records_per_sec(quota.records_per_sec);
}

// Checks a change's rates: at least one given, none negative.
absl::Status CheckChange(const storage::QuotaChange& change) {
  if (!change.bytes_per_sec.has_value() && !change.records_per_sec.has_value()) {
    return absl::InvalidArgumentError(
        "no quota rate given: set bytes per second and/or records per second (0: unlimited)");
  }
  if (change.bytes_per_sec.value_or(0) < 0 || change.records_per_sec.value_or(0) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "quota rates must be >= 0 (0: unlimited), not ", change.bytes_per_sec.value_or(0),
        " bytes/s and ", change.records_per_sec.value_or(0), " records/s"));
  }
  return absl::OkStatus();
}

// The storage id of a producer quota request's target: a producer id > 0, or the default.
absl::StatusOr<int64_t> QuotaTarget(int64_t producer_id, bool default_quota) {
  if (default_quota) {
    if (producer_id != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "producer_id ", producer_id, " given with default_quota: give one or the other"));
    }
    return storage::kDefaultProducerQuotaId;
  }
  if (producer_id <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("producer_id ", producer_id,
                     " is not a producer id (ids from InitProducer are > 0); set default_quota "
                     "for the default producer quota"));
  }
  return producer_id;
}

std::string TargetName(int64_t id) {
  return id == storage::kDefaultProducerQuotaId ? std::string("the default producer quota")
                                                : absl::StrCat("producer ", id);
}

}  // namespace

grpc::Status AdminServiceImpl::AlterTopic(grpc::ServerContext* /*context*/,
                                          const evlog::v1::AlterTopicRequest* request,
                                          evlog::v1::AlterTopicResponse* response) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateTopicName(request->name()); !s.ok()) return ToGrpcStatus(s);
  storage::QuotaChange change;
  if (request->has_quota_bytes_per_sec()) change.bytes_per_sec = request->quota_bytes_per_sec();
  if (request->has_quota_records_per_sec()) {
    change.records_per_sec = request->quota_records_per_sec();
  }
  if (absl::Status s = CheckChange(change); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<storage::Quota> quota = store_->AlterTopicQuota(request->name(), change);
  if (!quota.ok()) return ToGrpcStatus(quota.status());
  if (quotas_ != nullptr) quotas_->SetTopicQuota(request->name(), *quota);
  spdlog::info("topic {} quota: {} bytes/s, {} records/s (0: unlimited)", request->name(),
               quota->bytes_per_sec, quota->records_per_sec);
  absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(request->name());
  if (!info.ok()) return ToGrpcStatus(info.status());
  TopicToProto(*info, response->mutable_topic());
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::SetProducerQuota(grpc::ServerContext* /*context*/,
                                                const evlog::v1::SetProducerQuotaRequest* request,
                                                evlog::v1::SetProducerQuotaResponse* response) {
  DrainController::CallScope call(drain_);
  absl::StatusOr<int64_t> id = QuotaTarget(request->producer_id(), request->default_quota());
  if (!id.ok()) return ToGrpcStatus(id.status());
  storage::QuotaChange change;
  if (request->has_bytes_per_sec()) change.bytes_per_sec = request->bytes_per_sec();
  if (request->has_records_per_sec()) change.records_per_sec = request->records_per_sec();
  if (absl::Status s = CheckChange(change); !s.ok()) return ToGrpcStatus(s);
  absl::StatusOr<storage::Quota> quota = store_->SetProducerQuota(*id, change);
  if (!quota.ok()) return ToGrpcStatus(quota.status());
  if (quotas_ != nullptr) quotas_->SetProducerQuota(*id, *quota);
  spdlog::info("{}: {} bytes/s, {} records/s (0: unlimited)", TargetName(*id), quota->bytes_per_sec,
               quota->records_per_sec);
  QuotaToProto(*quota, response->mutable_quota());
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::DeleteProducerQuota(
    grpc::ServerContext* /*context*/, const evlog::v1::DeleteProducerQuotaRequest* request,
    evlog::v1::DeleteProducerQuotaResponse* /*response*/) {
  DrainController::CallScope call(drain_);
  absl::StatusOr<int64_t> id = QuotaTarget(request->producer_id(), request->default_quota());
  if (!id.ok()) return ToGrpcStatus(id.status());
  if (absl::Status s = store_->DeleteProducerQuota(*id); !s.ok()) return ToGrpcStatus(s);
  if (quotas_ != nullptr) quotas_->RemoveProducerQuota(*id);
  spdlog::info("removed {}", TargetName(*id));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListQuotas(grpc::ServerContext* /*context*/,
                                          const evlog::v1::ListQuotasRequest* /*request*/,
                                          evlog::v1::ListQuotasResponse* response) {
  DrainController::CallScope call(drain_);
  for (const std::string& name : store_->ListTopics()) {
    absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(name);
    if (absl::IsNotFound(info.status())) continue;  // deleted meanwhile
    if (!info.ok()) return ToGrpcStatus(info.status());
    if (info->config.quota.unlimited()) continue;
    evlog::v1::TopicQuota* t = response->add_topics();
    t->set_topic(name);
    QuotaToProto(info->config.quota, t->mutable_quota());
  }
  absl::StatusOr<std::vector<storage::ProducerQuota>> producers = store_->ListProducerQuotas();
  if (!producers.ok()) return ToGrpcStatus(producers.status());
  for (const storage::ProducerQuota& p : *producers) {
    if (p.producer_id == storage::kDefaultProducerQuotaId) {
      QuotaToProto(p.quota, response->mutable_default_producer_quota());
      continue;
    }
    evlog::v1::ProducerQuota* out = response->add_producers();
    out->set_producer_id(p.producer_id);
    QuotaToProto(p.quota, out->mutable_quota());
  }
  return grpc::Status::OK;
}

}  // namespace evlog::server
