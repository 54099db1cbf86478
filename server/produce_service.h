// ProducerServiceImpl: evlog.v1.ProducerService over a LogStore, with gRPC's callback API so
// that no thread waits for an fsync: each request is validated, handed to
// LogStore::AppendAsync, and answered from the store's completion callback.
//
// Produce streams answer in request order, keep at most EdgeLimits::max_inflight_per_stream
// requests unanswered (beyond that they stop reading, so HTTP/2 flow control pushes back on
// the client), and on draining answer what they have read and end with UNAVAILABLE.
// Admission (admission.h): each call is admitted per connection, and each request is charged
// its serialized size from being read to its response being written; what does not fit is
// answered at once with RESOURCE_EXHAUSTED and a computed retry hint, never queued.
// Rate quotas (quota.h): each request is then checked against its topic's and producer's
// token buckets just before the append; over quota is refused the same way.
// The contract is evlog.proto; the flow of one stream is in produce_service.cc.
//
// Thread safety: gRPC calls the methods from its threads; all dependencies are thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include "evlog/v1/evlog.grpc.pb.h"
#include "server/admission.h"
#include "server/drain.h"
#include "server/partition_router.h"
#include "server/quota.h"
#include "server/server_metrics.h"
#include "server/server_options.h"
#include "server/stream_slots.h"
#include "storage/log_store.h"

namespace evlog::server {

class ProducerServiceImpl final : public evlog::v1::ProducerService::CallbackService {
 public:
  // None of the pointers is owned; all must outlive the gRPC server that runs this service
  // (every call has ended when grpc::Server::Shutdown returns).
  ProducerServiceImpl(storage::LogStore* store, PartitionRouter* router, DrainController* drain,
                      AdmissionController* admission, const EdgeLimits& limits,
                      ServerMetrics* metrics, QuotaEnforcer* quotas = nullptr);

  grpc::ServerBidiReactor<evlog::v1::ProduceRequest, evlog::v1::ProduceResponse>* Produce(
      grpc::CallbackServerContext* context) override;

  grpc::ServerUnaryReactor* ProduceOne(grpc::CallbackServerContext* context,
                                       const evlog::v1::ProduceRequest* request,
                                       evlog::v1::ProduceResponse* response) override;

  // Allocates an idempotent producer id (synced write; brief, so it runs inline).
  grpc::ServerUnaryReactor* InitProducer(grpc::CallbackServerContext* context,
                                         const evlog::v1::InitProducerRequest* request,
                                         evlog::v1::InitProducerResponse* response) override;

  // Produce streams open now (for metrics). Any thread.
  int32_t open_streams() const { return stream_slots_.in_use(); }

 private:
  storage::LogStore* const store_;
  PartitionRouter* const router_;
  DrainController* const drain_;
  AdmissionController* const admission_;
  const EdgeLimits limits_;
  ServerMetrics* const metrics_;
  QuotaEnforcer* const quotas_;  // rate quotas (quota.h); null: none
  StreamSlots stream_slots_;
};

}  // namespace evlog::server
