// ServerMetrics: evlogd's metrics (the names, labels and meanings listed in README "Metrics"),
// on a MetricsRegistry (metrics.h). The services update the hot-path ones (records and bytes
// per topic, produce latency, refusals); the values owned by others (storage counters, RocksDB
// stall time, group lag, open connections, open streams, in-flight bytes) are read at scrape
// time from the sources given to AddServerSources / SetInflightRequestBytesSource.
//
// Hot-path use:
//   TopicMetrics* t = metrics->ForTopic(topic);   // once per topic (per stream / per call)
//   t->records_in->Add(n);                        // per append: relaxed atomic adds
//   metrics->Rejected("quota");                   // one line at any refusal site
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <grpcpp/support/server_interceptor.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "coordinator/group_coordinator.h"
#include "evlog/v1/evlog.pb.h"
#include "server/metrics.h"
#include "server/server_options.h"
#include "storage/log_store.h"

namespace evlog::server {

// The series of one topic. Pointers owned by the registry; valid while the ServerMetrics is.
struct TopicMetrics {
  Counter* records_in = nullptr;   // records appended (duplicates of idempotent retries excluded)
  Counter* bytes_in = nullptr;     // their record bytes (key + value + header keys and values)
  Counter* records_out = nullptr;  // records sent to readers
  Counter* bytes_out = nullptr;    // their record bytes
};

// Refusal reasons (the `reason` label of evlog_rejected_requests_total) used by evlogd itself.
// Each is a series from the start (at 0), so that rate() works before the first refusal.
inline constexpr absl::string_view kRejectInvalid = "invalid";
inline constexpr absl::string_view kRejectRecordTooLarge = "record_too_large";
inline constexpr absl::string_view kRejectBatchTooLarge = "batch_too_large";
inline constexpr absl::string_view kRejectQueueFull = "queue_full";
inline constexpr absl::string_view kRejectQuota = "quota";
inline constexpr absl::string_view kRejectInflightBudget = "inflight_budget";
inline constexpr absl::string_view kRejectStreamLimit = "stream_limit";
inline constexpr absl::string_view kRejectConnectionLimit = "connection_limit";
inline constexpr absl::string_view kRejectShuttingDown = "shutting_down";
inline constexpr absl::string_view kRejectResourceExhausted = "resource_exhausted";

class ServerMetrics {
 public:
  ServerMetrics();
  ~ServerMetrics();
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // The series of `topic`, created on first use. Takes a lock: call it once per topic and keep
  // the pointer (valid for this object's lifetime). Only call it for topics that exist (series
  // are never freed, so arbitrary names would grow the registry without bound).
  TopicMetrics* ForTopic(absl::string_view topic);

  // The admin service reports topics it deleted and created: a deleted topic's series are
  // left out of scrapes (a stream still holding them may count into them meanwhile), and come
  // back, with their values, if a topic of that name is created again (counters only go up).
  void TopicDeleted(absl::string_view topic);
  void TopicCreated(absl::string_view topic);

  // Counts one refused request (RESOURCE_EXHAUSTED, INVALID_ARGUMENT, or UNAVAILABLE while
  // shutting down) under `reason`: one of the kReject* names above (lock-free), or another
  // lowercase snake_case word from a fixed set in the code (takes a lock on every call: add a
  // frequent reason to the list above instead).
  void Rejected(absl::string_view reason);

  // Records one produce request's latency, from the request being read off the wire to its
  // append being durable (acknowledgeable).
  void ObserveProduceLatency(absl::Duration latency);

  // Where scrape-time values come from. None is owned; each must outlive every scrape (stop
  // the metrics HTTP server before destroying them). `produce_streams` / `read_streams`
  // return the number of open streams. Call once, after the gRPC server is started.
  struct Sources {
    storage::LogStore* store = nullptr;
    coordinator::GroupCoordinator* coordinator = nullptr;
    std::function<int64_t()> produce_streams;
    std::function<int64_t()> read_streams;
  };
  void AddServerSources(Sources sources);

  // The in-flight request byte budget's current use (admission control), read at scrape time
  // as evlog_inflight_request_bytes. Until it is set, that metric is absent (no budget is
  // tracked, and 0 would be a lie). May be called at any time, at most once; `bytes` must be
  // thread-safe and outlive every scrape.
  void SetInflightRequestBytesSource(std::function<int64_t()> bytes);

  // A gRPC interceptor factory that counts INVALID_ARGUMENT and RESOURCE_EXHAUSTED statuses of
  // AdminService and GroupService calls (reasons "invalid" and "resource_exhausted"); produce
  // and read paths count their refusals at the refusal site, with precise reasons, and get no
  // interceptor. Register it with ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
  NewRefusalInterceptorFactory();

  // Every metric in the Prometheus text format 0.0.4.
  std::string Scrape() const { return registry_.Scrape(); }

  MetricsRegistry& registry() { return registry_; }

 private:
  MetricsRegistry registry_;
  CounterFamily* records_in_;
  CounterFamily* bytes_in_;
  CounterFamily* records_out_;
  CounterFamily* bytes_out_;
  CounterFamily* rejected_;
  Histogram* produce_latency_;
  // The pre-created refusal series, searched without a lock.
  std::vector<std::pair<absl::string_view, Counter*>> known_reasons_;

  absl::Mutex topics_mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<TopicMetrics>> topics_
      ABSL_GUARDED_BY(topics_mu_);

  // Deleted topics whose series scrapes leave out. Never held while calling into a family
  // (the families' filters take it under their own lock).
  mutable absl::Mutex deleted_mu_;
  absl::flat_hash_set<std::string> deleted_topics_ ABSL_GUARDED_BY(deleted_mu_);

  absl::Mutex inflight_mu_;
  std::function<int64_t()> inflight_bytes_ ABSL_GUARDED_BY(inflight_mu_);
};

// A one-entry cache of ServerMetrics::ForTopic for a caller that serializes its own calls (a
// produce stream): a stream usually writes to one topic, so the lookup (and its lock) happens
// once per topic switch, not per request. Not thread-safe.
class TopicMetricsCache {
 public:
  // The series of `topic`. `metrics` must be the same on every call.
  TopicMetrics* Get(ServerMetrics* metrics, absl::string_view topic) {
    if (series_ == nullptr || topic != topic_) {
      topic_ = std::string(topic);
      series_ = metrics->ForTopic(topic);
    }
    return series_;
  }

 private:
  std::string topic_;
  TopicMetrics* series_ = nullptr;
};

// The record bytes of a batch, as evlog_bytes_in_total counts them: key + value + header keys
// and values of every record.
int64_t BatchRecordBytes(const std::vector<storage::Record>& records);

// Which refusal reason a produce request that failed TakeValidBatch gets: record_too_large if
// a record is over max_record_bytes, batch_too_large if the request is over max_batch_bytes or
// max_batch_records, else invalid. Only for the failure path (it re-measures the request).
absl::string_view InvalidBatchReason(const evlog::v1::ProduceRequest& request,
                                     const EdgeLimits& limits);

// The number of TCP connections gRPC servers in this process hold open (idle ones included),
// from gRPC's channelz registry. Cost: one JSON page per 500 connections.
int64_t CountOpenConnections();

}  // namespace evlog::server
