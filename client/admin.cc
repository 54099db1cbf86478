#include "client/admin.h"

#include <utility>

#include <grpcpp/client_context.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include "absl/synchronization/notification.h"
#include "client/channel.h"
#include "client/grpc_status.h"
#include "evlog/v1/evlog.grpc.pb.h"

namespace evlog::client {
namespace {

TopicDescription FromProto(const evlog::v1::TopicDescription& t) {
  TopicDescription d;
  d.name = t.name();
  d.partition_count = t.partition_count();
  d.retention_ms = t.retention_ms();
  d.retention_bytes = t.retention_bytes();
  d.created_ms = t.created_ms();
  d.quota = {.bytes_per_sec = t.quota().bytes_per_sec(),
             .records_per_sec = t.quota().records_per_sec()};
  d.partitions.reserve(t.partitions_size());
  for (const auto& p : t.partitions()) {
    d.partitions.push_back({.partition = p.partition(),
                            .start_offset = p.start_offset(),
                            .end_offset = p.end_offset(),
                            .bytes = p.bytes()});
  }
  return d;
}

// grpc.health.v1 messages are tiny, so they are encoded by hand over a generic stub rather
// than generated: that keeps a second copy of health.proto out of the process (the server
// registers its own).
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }
std::string EncodeHealthRequest(const std::string& service) {
  std::string out;
  if (service.empty()) return out;
  out.push_back(0x0A);  // field 1, length-delimited
  for (uint64_t n = service.size();; n >>= 7) {
    if (n < 0x80) {
      out.push_back(static_cast<char>(n));
      break;
    }
    out.push_back(static_cast<char>((n & 0x7F) | 0x80));
  }
  out += service;
  return out;
}

// Reads field 1 (varint) of a HealthCheckResponse; unknown fields are skipped.
absl::StatusOr<HealthState> DecodeHealthResponse(const std::string& bytes) {
  size_t i = 0;
  auto varint = [&](uint64_t* v) {
    *v = 0;
    for (int shift = 0; i < bytes.size() && shift < 64; shift += 7) {
      const auto b = static_cast<uint8_t>(bytes[i++]);
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  };
  uint64_t status = 0;
  while (i < bytes.size()) {
    uint64_t tag = 0;
    if (!varint(&tag)) break;
    uint64_t v = 0;
    switch (tag & 7) {
      case 0:
        if (!varint(&v)) return absl::InternalError("malformed health check response");
        if ((tag >> 3) == 1) status = v;
        break;
      case 2:
        if (!varint(&v) || v > bytes.size() - i) {
          return absl::InternalError("malformed health check response");
        }
        i += v;
        break;
      case 1:
        i += 8;
        break;
      case 5:
        i += 4;
        break;
      default:
        return absl::InternalError("malformed health check response");
    }
  }
  if (status > 3) return HealthState::kUnknown;
  return static_cast<HealthState>(status);
}

class AdminImpl final : public Admin {
 public:
  AdminImpl(std::shared_ptr<grpc::Channel> channel, const AdminOptions& options)
      : channel_(std::move(channel)),
        stub_(evlog::v1::AdminService::NewStub(channel_)),
        options_(options) {}

  absl::StatusOr<TopicDescription> CreateTopic(const std::string& name,
                                               const TopicSettings& settings) override {
    evlog::v1::CreateTopicRequest request;
    request.set_name(name);
    request.set_partitions(settings.partitions);
    request.set_retention_ms(settings.retention_ms);
    request.set_retention_bytes(settings.retention_bytes);
    if (settings.quota != Quota{}) {
      request.mutable_quota()->set_bytes_per_sec(settings.quota.bytes_per_sec);
      request.mutable_quota()->set_records_per_sec(settings.quota.records_per_sec);
    }
    evlog::v1::CreateTopicResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s = FromGrpcStatus(stub_->CreateTopic(&context, request, &response), &context);
    if (!s.ok()) return s;
    return FromProto(response.topic());
  }

  absl::Status DeleteTopic(const std::string& name) override {
    evlog::v1::DeleteTopicRequest request;
    request.set_name(name);
    evlog::v1::DeleteTopicResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    return FromGrpcStatus(stub_->DeleteTopic(&context, request, &response), &context);
  }

  absl::StatusOr<std::vector<std::string>> ListTopics() override {
    evlog::v1::ListTopicsRequest request;
    evlog::v1::ListTopicsResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s = FromGrpcStatus(stub_->ListTopics(&context, request, &response), &context);
    if (!s.ok()) return s;
    return std::vector<std::string>(response.names().begin(), response.names().end());
  }

  absl::StatusOr<TopicDescription> DescribeTopic(const std::string& name) override {
    evlog::v1::DescribeTopicRequest request;
    request.set_name(name);
    evlog::v1::DescribeTopicResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s = FromGrpcStatus(stub_->DescribeTopic(&context, request, &response), &context);
    if (!s.ok()) return s;
    return FromProto(response.topic());
  }

  absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>> OffsetsForTimestamp(
      const std::string& topic, int64_t timestamp_ms,
      const std::vector<int32_t>& partitions) override {
    evlog::v1::OffsetForTimestampRequest request;
    request.set_topic(topic);
    request.set_timestamp_ms(timestamp_ms);
    for (int32_t p : partitions) request.add_partitions(p);
    evlog::v1::OffsetForTimestampResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s =
        FromGrpcStatus(stub_->OffsetForTimestamp(&context, request, &response), &context);
    if (!s.ok()) return s;
    std::vector<std::pair<int32_t, int64_t>> out;
    for (const auto& o : response.offsets()) out.emplace_back(o.partition(), o.offset());
    return out;
  }

  absl::StatusOr<ServerDescription> DescribeServer() override {
    evlog::v1::DescribeServerRequest request;
    evlog::v1::DescribeServerResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s = FromGrpcStatus(stub_->DescribeServer(&context, request, &response), &context);
    if (!s.ok()) return s;
    return ServerDescription{.version = response.version(),
                             .max_record_bytes = response.max_record_bytes(),
                             .max_batch_bytes = response.max_batch_bytes(),
                             .max_batch_records = response.max_batch_records(),
                             .max_response_bytes = response.max_response_bytes(),
                             .max_inflight_per_stream = response.max_inflight_per_stream(),
                             .fsync = response.fsync()};
  }

  absl::StatusOr<TopicDescription> AlterTopicQuota(const std::string& name,
                                                   const QuotaChange& change) override {
    evlog::v1::AlterTopicRequest request;
    request.set_name(name);
    if (change.bytes_per_sec.has_value()) request.set_quota_bytes_per_sec(*change.bytes_per_sec);
    if (change.records_per_sec.has_value()) {
      request.set_quota_records_per_sec(*change.records_per_sec);
    }
    evlog::v1::AlterTopicResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s = FromGrpcStatus(stub_->AlterTopic(&context, request, &response), &context);
    if (!s.ok()) return s;
    return FromProto(response.topic());
  }

  absl::StatusOr<Quota> SetProducerQuota(int64_t producer_id, const QuotaChange& change) override {
    evlog::v1::SetProducerQuotaRequest request;
    if (producer_id == kDefaultProducerQuota) {
      request.set_default_quota(true);
    } else {
      request.set_producer_id(producer_id);
    }
    if (change.bytes_per_sec.has_value()) request.set_bytes_per_sec(*change.bytes_per_sec);
    if (change.records_per_sec.has_value()) request.set_records_per_sec(*change.records_per_sec);
    evlog::v1::SetProducerQuotaResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s =
        FromGrpcStatus(stub_->SetProducerQuota(&context, request, &response), &context);
    if (!s.ok()) return s;
    return Quota{.bytes_per_sec = response.quota().bytes_per_sec(),
                 .records_per_sec = response.quota().records_per_sec()};
  }

  absl::Status DeleteProducerQuota(int64_t producer_id) override {
    evlog::v1::DeleteProducerQuotaRequest request;
    if (producer_id == kDefaultProducerQuota) {
      request.set_default_quota(true);
    } else {
      request.set_producer_id(producer_id);
    }
    evlog::v1::DeleteProducerQuotaResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    return FromGrpcStatus(stub_->DeleteProducerQuota(&context, request, &response), &context);
  }

  absl::StatusOr<QuotaList> ListQuotas() override {
    evlog::v1::ListQuotasRequest request;
    evlog::v1::ListQuotasResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Status s = FromGrpcStatus(stub_->ListQuotas(&context, request, &response), &context);
    if (!s.ok()) return s;
    auto quota = [](const evlog::v1::Quota& q) {
      return Quota{.bytes_per_sec = q.bytes_per_sec(), .records_per_sec = q.records_per_sec()};
    };
    QuotaList out;
    for (const auto& t : response.topics()) out.topics.emplace_back(t.topic(), quota(t.quota()));
    if (response.has_default_producer_quota()) {
      out.default_producer_quota = quota(response.default_producer_quota());
    }
    for (const auto& p : response.producers()) {
      out.producers.emplace_back(p.producer_id(), quota(p.quota()));
    }
    return out;
  }

  absl::StatusOr<HealthState> CheckHealth(const std::string& service) override {
    grpc::GenericStub stub(channel_);
    const std::string encoded = EncodeHealthRequest(service);
    grpc::Slice slice(encoded);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.timeout);
    absl::Notification done;
    grpc::Status status;
    stub.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                   &response, [&](grpc::Status s) {
                     status = std::move(s);
                     done.Notify();
                   });
    done.WaitForNotification();
    absl::Status s = FromGrpcStatus(status, &context);
    if (!s.ok()) return s;
    std::vector<grpc::Slice> slices;
    if (!response.Dump(&slices).ok()) {
      return absl::InternalError("unreadable health check response");
    }
    std::string bytes;
    for (const grpc::Slice& sl : slices) {
      bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
    }
    return DecodeHealthResponse(bytes);
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<evlog::v1::AdminService::Stub> stub_;
  AdminOptions options_;
};

}  // namespace

std::unique_ptr<Admin> Admin::Create(const std::string& target, const AdminOptions& options) {
  return Create(CreateEvlogChannel(target), options);
}

std::unique_ptr<Admin> Admin::Create(std::shared_ptr<grpc::Channel> channel,
                                     const AdminOptions& options) {
  return std::make_unique<AdminImpl>(std::move(channel), options);
}

}  // namespace evlog::client
