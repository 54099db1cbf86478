// EvlogServer: evlogd's gRPC server: the evlog.v1 services over one LogStore, plus the
// standard health service (grpc.health.v1) and server reflection (v1alpha).
//
// Lifecycle: Start() binds and serves; Shutdown() drains (produce streams answer what they
// read and end with UNAVAILABLE, read streams end), stops accepting calls, waits up to a
// deadline for in-flight calls and cancels the rest. The store is not owned: close it after
// Shutdown() returns.
//
// Thread safety: Shutdown() may be called from any thread, once.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "coordinator/group_coordinator.h"
#include "server/admin_service.h"
#include "server/admission.h"
#include "server/drain.h"
#include "server/group_service.h"
#include "server/metrics_http.h"
#include "server/partition_router.h"
#include "server/produce_service.h"
#include "server/quota.h"
#include "server/read_service.h"
#include "server/server_metrics.h"
#include "server/server_options.h"
#include "storage/log_store.h"

namespace evlog::server {

class EvlogServer {
 public:
  // Starts serving on options.listen ("host:port"; port 0 picks a free port). `store` is not
  // owned and must outlive the server.
  // Errors: INVALID_ARGUMENT for a malformed address; UNAVAILABLE if it cannot be bound.
  static absl::StatusOr<std::unique_ptr<EvlogServer>> Start(const ServerOptions& options,
                                                            storage::LogStore* store);

  // Shuts down gracefully if Shutdown() was not called.
  ~EvlogServer();

  // The address served, "host:port", with the port actually bound.
  const std::string& address() const { return address_; }

  // Admission control of produce calls: for metrics (inflight_bytes(), SetRefusalObserver
  // before traffic arrives) and logs. Valid for the server's lifetime.
  AdmissionController& admission() { return admission_; }

  // The Prometheus endpoint's "host:port" (port actually bound), or "" when
  // options.metrics_listen is empty.
  const std::string& metrics_address() const;

  // The server's metrics: services report into it; other components may add their own
  // (e.g. Rejected(reason), SetInflightRequestBytesSource). Valid for the server's lifetime.
  ServerMetrics* metrics() { return &metrics_; }

  // Drains, stops accepting calls and waits until every call has ended; calls still running
  // after `timeout` are cancelled. Health checks report NOT_SERVING from the start.
  void Shutdown(absl::Duration timeout);

 private:
  EvlogServer(const ServerOptions& options, storage::LogStore* store);

  // Declared first: the services hold pointers to it; destroyed last.
  ServerMetrics metrics_;
  PartitionRouter router_;
  DrainController drain_;
  // Admission control of produce calls (in-flight bytes, connections); before producer_,
  // which points to it.
  AdmissionController admission_;
  // Live token buckets of the rate quotas, loaded from the store at Start; before producer_
  // and admin_, which point to it.
  QuotaEnforcer quotas_;
  ProducerServiceImpl producer_;
  ReaderServiceImpl reader_;
  AdminServiceImpl admin_;
  // Consumer groups (groups.proto). Declared before groups_ and server_, so it is destroyed
  // (and its expiry thread stopped) after them.
  coordinator::GroupCoordinator coordinator_;
  GroupServiceImpl groups_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  // Declared after everything its scrapes read (store stats, coordinator, services), so it is
  // destroyed, and its thread stopped, first.
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  bool shut_down_ = false;
};

}  // namespace evlog::server
