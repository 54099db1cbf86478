#include "server/server_metrics.h"

#include <cstdlib>
#include <utility>

#include <grpc/grpc.h>
#include <grpc/support/alloc.h>

#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "server/validation.h"

namespace evlog::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

constexpr absl::string_view kKnownReasons[] = {
    kRejectInvalid,      kRejectRecordTooLarge,   kRejectBatchTooLarge, kRejectQueueFull,
    kRejectQuota,        kRejectInflightBudget,   kRejectStreamLimit,   kRejectConnectionLimit,
    kRejectShuttingDown, kRejectResourceExhausted};

// Counts refusals of one admin or group call, by the status it ends with.
class RefusalInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit RefusalInterceptor(ServerMetrics* metrics) : metrics_(metrics) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      switch (methods->GetSendStatus().error_code()) {
        case grpc::StatusCode::INVALID_ARGUMENT:
          metrics_->Rejected(kRejectInvalid);
          break;
        case grpc::StatusCode::RESOURCE_EXHAUSTED:
          metrics_->Rejected(kRejectResourceExhausted);
          break;
        default:
          break;
      }
    }
    methods->Proceed();
  }

 private:
  ServerMetrics* const metrics_;
};

class RefusalInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RefusalInterceptorFactory(ServerMetrics* metrics) : metrics_(metrics) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    // Produce and read calls count their refusals where they refuse, with a precise reason;
    // returning null keeps interception entirely off their (hot) paths.
    const absl::string_view method = info->method() == nullptr ? "" : info->method();
    if (absl::StartsWith(method, "/evlog.v1.AdminService/") ||
        absl::StartsWith(method, "/evlog.v1.GroupService/")) {
      return new RefusalInterceptor(metrics_);
    }
    return nullptr;
  }

 private:
  ServerMetrics* const metrics_;
};

// Takes ownership of a string returned by a grpc_channelz_* function.
std::string TakeChannelzJson(char* json) {
  if (json == nullptr) return "";
  std::string copy(json);
  gpr_free(json);
  return copy;
}

// Channelz ids are int64 values, written as JSON strings (proto3 JSON mapping).
int64_t IdOf(const nlohmann::json& ref, const char* field) {
  if (!ref.contains(field)) return -1;
  const nlohmann::json& id = ref[field];
  if (id.is_string()) return std::strtoll(id.get<std::string>().c_str(), nullptr, 10);
  if (id.is_number_integer()) return id.get<int64_t>();
  return -1;
}

}  // namespace

ServerMetrics::ServerMetrics() {
  records_in_ = registry_.AddCounterFamily(
      "evlog_records_in_total",
      "Records appended to the topic (acknowledged produce requests; retries answered as "
      "duplicates are not counted).",
      {"topic"});
  bytes_in_ = registry_.AddCounterFamily(
      "evlog_bytes_in_total",
      "Record bytes appended to the topic: key + value + header keys and values, the size "
      "--max-record-bytes limits (not the stored or wire size).",
      {"topic"});
  records_out_ = registry_.AddCounterFamily(
      "evlog_records_out_total", "Records sent to readers (Read calls) from the topic.", {"topic"});
  bytes_out_ = registry_.AddCounterFamily(
      "evlog_bytes_out_total",
      "Record bytes sent to readers from the topic: key + value + header keys and values.",
      {"topic"});
  produce_latency_ = registry_.AddHistogram(
      "evlog_produce_latency_seconds",
      "Time from a produce request being read off the wire to its append being durable "
      "(fsynced under --fsync=always), for appended requests.",
      LatencyBucketsSeconds());
  rejected_ = registry_.AddCounterFamily(
      "evlog_rejected_requests_total",
      "Requests refused at the edge, by reason: invalid, record_too_large, batch_too_large "
      "(INVALID_ARGUMENT); queue_full (storage writer queue), quota, inflight_budget, "
      "stream_limit, connection_limit, resource_exhausted (RESOURCE_EXHAUSTED); shutting_down "
      "(UNAVAILABLE while draining).",
      {"reason"});
  for (absl::string_view reason : kKnownReasons) {
    known_reasons_.emplace_back(reason, rejected_->WithLabels({std::string(reason)}));
  }
  auto topic_exists = [this](const LabelValues& values) {
    absl::MutexLock l(&deleted_mu_);
    return !deleted_topics_.contains(values[0]);
  };
  for (CounterFamily* family : {records_in_, bytes_in_, records_out_, bytes_out_}) {
    family->SetFilter(topic_exists);
  }
}

ServerMetrics::~ServerMetrics() = default;

TopicMetrics* ServerMetrics::ForTopic(absl::string_view topic) {
  absl::MutexLock l(&topics_mu_);
  std::unique_ptr<TopicMetrics>& t = topics_[topic];
  if (t == nullptr) {
    const LabelValues labels = {std::string(topic)};
    t = std::make_unique<TopicMetrics>();
    t->records_in = records_in_->WithLabels(labels);
    t->bytes_in = bytes_in_->WithLabels(labels);
    t->records_out = records_out_->WithLabels(labels);
    t->bytes_out = bytes_out_->WithLabels(labels);
  }
  return t.get();
}

void ServerMetrics::TopicDeleted(absl::string_view topic) {
  absl::MutexLock l(&deleted_mu_);
  deleted_topics_.insert(std::string(topic));
}

void ServerMetrics::TopicCreated(absl::string_view topic) {
  absl::MutexLock l(&deleted_mu_);
  deleted_topics_.erase(topic);
}

void ServerMetrics::Rejected(absl::string_view reason) {
  for (const auto& [name, counter] : known_reasons_) {
    if (name == reason) {
      counter->Add();
      return;
    }
  }
  rejected_->WithLabels({std::string(reason)})->Add();
}

void ServerMetrics::ObserveProduceLatency(absl::Duration latency) {
  produce_latency_->Observe(absl::ToDoubleSeconds(latency));
}

void ServerMetrics::AddServerSources(Sources sources) {
  storage::LogStore* store = sources.store;
  registry_.AddCollector(
      {"evlog_fsyncs_total", "evlog_write_groups_total", "evlog_rocksdb_stall_seconds_total"},
      [store](ExpositionWriter& w) {
        const storage::StoreStats stats = store->Stats();  // one snapshot for all three
        w.BeginFamily("evlog_fsyncs_total",
                      "Fsyncs by the storage writer (segment data files and the write-ahead log).",
                      MetricType::kCounter);
        w.Sample("evlog_fsyncs_total", {}, static_cast<double>(stats.fsyncs));
        w.BeginFamily("evlog_write_groups_total",
                      "RocksDB writes issued by the storage writer; each carries every append "
                      "that was waiting for it (group commit).",
                      MetricType::kCounter);
        w.Sample("evlog_write_groups_total", {}, static_cast<double>(stats.write_groups));
        w.BeginFamily("evlog_rocksdb_stall_seconds_total",
                      "Time RocksDB delayed or stopped writes (too many memtables or L0 files; "
                      "RocksDB's STALL_MICROS), summed over writes.",
                      MetricType::kCounter);
        w.Sample("evlog_rocksdb_stall_seconds_total", {},
                 static_cast<double>(stats.stall_micros) / 1e6);
      });

  coordinator::GroupCoordinator* coordinator = sources.coordinator;
  registry_.AddCollector({"evlog_group_lag"}, [coordinator](ExpositionWriter& w) {
    w.BeginFamily("evlog_group_lag",
                  "Records a consumer group has yet to read on a partition: end offset - "
                  "committed offset (end - start offset when nothing is committed), as `evlog "
                  "group describe` shows it.",
                  MetricType::kGauge);
    for (const std::string& group : coordinator->ListGroups()) {
      absl::StatusOr<coordinator::GroupDescription> d = coordinator->Describe(group);
      if (!d.ok()) continue;  // deleted since ListGroups
      for (const coordinator::PartitionDescription& p : d->partitions) {
        w.Sample("evlog_group_lag",
                 {{"group", group},
                  {"topic", p.tp.topic},
                  {"partition", std::to_string(p.tp.partition)}},
                 static_cast<double>(p.lag));
      }
    }
  });

  registry_.AddCallbackGauge(
      "evlog_open_connections",
      "TCP connections the gRPC server holds open, idle ones included (gRPC channelz server "
      "sockets).",
      [] { return static_cast<double>(CountOpenConnections()); });
  registry_.AddCallbackGauge(
      "evlog_produce_streams", "Open Produce streams.",
      [f = std::move(sources.produce_streams)] { return static_cast<double>(f()); });
  registry_.AddCallbackGauge(
      "evlog_read_streams", "Open Read calls (follow or not).",
      [f = std::move(sources.read_streams)] { return static_cast<double>(f()); });
  registry_.AddCollector({"evlog_inflight_request_bytes"}, [this](ExpositionWriter& w) {
    absl::MutexLock l(&inflight_mu_);
    if (!inflight_bytes_) return;  // no budget tracked: say nothing rather than 0
    w.BeginFamily("evlog_inflight_request_bytes",
                  "Bytes of produce requests read and not yet answered, charged against the "
                  "global in-flight budget.",
                  MetricType::kGauge);
    w.Sample("evlog_inflight_request_bytes", {}, static_cast<double>(inflight_bytes_()));
  });
}

void ServerMetrics::SetInflightRequestBytesSource(std::function<int64_t()> bytes) {
  absl::MutexLock l(&inflight_mu_);
  inflight_bytes_ = std::move(bytes);
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
ServerMetrics::NewRefusalInterceptorFactory() {
  return std::make_unique<RefusalInterceptorFactory>(this);
}

int64_t BatchRecordBytes(const std::vector<storage::Record>& records) {
  int64_t bytes = 0;
  for (const storage::Record& r : records) {
    bytes += static_cast<int64_t>(r.key.size() + r.value.size());
    for (const storage::RecordHeader& h : r.headers) {
      bytes += static_cast<int64_t>(h.key.size() + h.value.size());
    }
  }
  return bytes;
}

absl::string_view InvalidBatchReason(const evlog::v1::ProduceRequest& request,
                                     const EdgeLimits& limits) {
  for (const evlog::v1::Record& record : request.records()) {
    if (RecordSize(record) > limits.max_record_bytes) return kRejectRecordTooLarge;
  }
  if (request.records_size() > limits.max_batch_records ||
      static_cast<int64_t>(request.ByteSizeLong()) > limits.max_batch_bytes) {
    return kRejectBatchTooLarge;
  }
  return kRejectInvalid;
}

int64_t CountOpenConnections() {
  constexpr intptr_t kPage = 500;
  int64_t count = 0;
  const nlohmann::json servers =
      nlohmann::json::parse(TakeChannelzJson(grpc_channelz_get_servers(0)), nullptr,
                            /*allow_exceptions=*/false);
  if (!servers.is_object() || !servers.contains("server")) return 0;
  for (const nlohmann::json& server : servers["server"]) {
    if (!server.contains("ref")) continue;
    const int64_t server_id = IdOf(server["ref"], "serverId");
    if (server_id < 0) continue;
    int64_t start = 0;
    while (true) {
      const nlohmann::json page = nlohmann::json::parse(
          TakeChannelzJson(grpc_channelz_get_server_sockets(server_id, start, kPage)), nullptr,
          /*allow_exceptions=*/false);
      if (!page.is_object()) break;
      int64_t last = -1;
      if (page.contains("socketRef")) {
        for (const nlohmann::json& ref : page["socketRef"]) {
          ++count;
          last = std::max(last, IdOf(ref, "socketId"));
        }
      }
      if (page.value("end", true) || last < 0) break;
      start = last + 1;
    }
  }
  return count;
}

}  // namespace evlog::server
