// Admin: topic administration and server inspection over evlog's AdminService, plus the
// standard gRPC health check.
//
// Example:
//   auto admin = evlog::client::Admin::Create("127.0.0.1:7070");
//   absl::Status s = (*admin)->CreateTopic("orders", {.partitions = 4});
//   auto topic = (*admin)->DescribeTopic("orders");
//   if (topic.ok()) std::cout << topic->partitions[0].end_offset;
//
// Every call has a deadline (AdminOptions::timeout) and returns the server's status code and
// message unchanged (see grpc_status.h), so the codes below are those of evlog.proto.
//
// Thread safety: every method may be called from any thread concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace evlog::client {

struct AdminOptions {
  // Deadline of each call. Default: 30 s.
  absl::Duration timeout = absl::Seconds(30);
};

// A rate quota (evlog.proto Quota): bytes are record sizes; 0 in a field means unlimited.
struct Quota {
  int64_t bytes_per_sec = 0;
  int64_t records_per_sec = 0;
  bool operator==(const Quota&) const = default;
};

// A change to a quota: rates left empty keep their value (at least one must be given).
struct QuotaChange {
  std::optional<int64_t> bytes_per_sec;
  std::optional<int64_t> records_per_sec;
};

// Pass as producer_id to the producer quota calls to mean the default producer quota (the
// quota of every producer id without its own).
inline constexpr int64_t kDefaultProducerQuota = 0;

// Every quota in force (AdminService.ListQuotas).
struct QuotaList {
  std::vector<std::pair<std::string, Quota>> topics;  // topics with a quota, by name
  std::optional<Quota> default_producer_quota;        // absent: none set
  std::vector<std::pair<int64_t, Quota>> producers;   // by producer id
};

// A new topic's settings.
struct TopicSettings {
  int32_t partitions = 1;        // 1..4096
  int64_t retention_ms = -1;     // -1: keep forever
  int64_t retention_bytes = -1;  // per partition; -1: no limit
  Quota quota;                   // the topic's rate quota; default: unlimited
};

struct PartitionDescription {
  int32_t partition = 0;
  int64_t start_offset = 0;  // lowest readable offset
  int64_t end_offset = 0;    // next offset to be written (high watermark)
  int64_t bytes = 0;         // stored bytes from start_offset on
};

struct TopicDescription {
  std::string name;
  int32_t partition_count = 0;
  int64_t retention_ms = -1;
  int64_t retention_bytes = -1;
  int64_t created_ms = 0;
  std::vector<PartitionDescription> partitions;  // in partition order
  Quota quota;                                   // 0 fields: unlimited
};

// The server's version and limits (AdminService.DescribeServer).
struct ServerDescription {
  std::string version;
  int64_t max_record_bytes = 0;
  int64_t max_batch_bytes = 0;
  int32_t max_batch_records = 0;
  int64_t max_response_bytes = 0;
  int32_t max_inflight_per_stream = 0;
  std::string fsync;
};

// grpc.health.v1 serving status.
enum class HealthState { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

class Admin {
 public:
  // A client for the server at `target` ("HOST:PORT"). Connects lazily: never blocks; an
  // unreachable server shows as UNAVAILABLE on the first call.
  static std::unique_ptr<Admin> Create(const std::string& target, const AdminOptions& options = {});
  // Same, over an existing channel (shared with other clients).
  static std::unique_ptr<Admin> Create(std::shared_ptr<grpc::Channel> channel,
                                       const AdminOptions& options = {});

  virtual ~Admin() = default;

  // Creates a topic; returns it as created.
  // Errors: INVALID_ARGUMENT (bad name, partitions outside 1..4096, bad retention);
  // ALREADY_EXISTS; transport errors (UNAVAILABLE, DEADLINE_EXCEEDED).
  virtual absl::StatusOr<TopicDescription> CreateTopic(const std::string& name,
                                                       const TopicSettings& settings) = 0;

  // Deletes a topic and its records. Errors: INVALID_ARGUMENT, NOT_FOUND, transport errors.
  virtual absl::Status DeleteTopic(const std::string& name) = 0;

  // Every topic's name, sorted bytewise. Errors: transport errors.
  virtual absl::StatusOr<std::vector<std::string>> ListTopics() = 0;

  // A topic's configuration and per-partition offsets.
  // Errors: INVALID_ARGUMENT, NOT_FOUND, transport errors.
  virtual absl::StatusOr<TopicDescription> DescribeTopic(const std::string& name) = 0;

  // For each of `partitions` (empty: every partition, in order), the first offset whose
  // record timestamp is >= timestamp_ms, or the partition's end offset if none is.
  // Returns (partition, offset) pairs in the order asked.
  // Errors: INVALID_ARGUMENT, NOT_FOUND, OUT_OF_RANGE (no such partition), DATA_LOSS.
  virtual absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>> OffsetsForTimestamp(
      const std::string& topic, int64_t timestamp_ms, const std::vector<int32_t>& partitions) = 0;

  // The server's version and limits. Errors: transport errors.
  virtual absl::StatusOr<ServerDescription> DescribeServer() = 0;

  // Changes a topic's quota (AdminService.AlterTopic); rates not given keep their value.
  // Returns the topic as changed. Errors: INVALID_ARGUMENT (no rate given, negative rate, bad
  // name), NOT_FOUND, transport errors.
  virtual absl::StatusOr<TopicDescription> AlterTopicQuota(const std::string& name,
                                                           const QuotaChange& change) = 0;

  // Sets producer `producer_id`'s quota (> 0), or the default producer quota with
  // kDefaultProducerQuota; rates not given keep their value. Returns the quota now in force.
  // Errors: INVALID_ARGUMENT (negative id, no rate, negative rate), transport errors.
  virtual absl::StatusOr<Quota> SetProducerQuota(int64_t producer_id,
                                                 const QuotaChange& change) = 0;

  // Removes producer `producer_id`'s own quota, or the default one (kDefaultProducerQuota).
  // Errors: INVALID_ARGUMENT (negative id), NOT_FOUND (none set), transport errors.
  virtual absl::Status DeleteProducerQuota(int64_t producer_id) = 0;

  // Every quota in force. Errors: transport errors, DATA_LOSS.
  virtual absl::StatusOr<QuotaList> ListQuotas() = 0;

  // grpc.health.v1.Health/Check for `service` ("" = the whole server).
  // Errors: NOT_FOUND if the server does not know `service`; transport errors.
  virtual absl::StatusOr<HealthState> CheckHealth(const std::string& service) = 0;
};

}  // namespace evlog::client
