// ProducerServiceImpl: evlog.v1.ProducerService over a LogStore, with gRPC's callback API so
// that no thread waits for an fsync: each request is validated, handed to
// LogStore::AppendAsync, and answered from the store's completion callback.
//
// Produce streams answer in request order, keep at most EdgeLimits::max_inflight_per_stream
// requests unanswered (beyond that they stop reading, so HTTP/2 flow control pushes back on
// the client), and on draining answer what they have read and end with UNAVAILABLE.
// The contract is evlog.proto; the flow of one stream is in produce_service.cc.
//
// Thread safety: gRPC calls the methods from its threads; all dependencies are thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include "evlog/v1/evlog.grpc.pb.h"
#include "server/drain.h"
#include "server/partition_router.h"
#include "server/server_options.h"
#include "server/stream_slots.h"
#include "storage/log_store.h"

namespace evlog::server {

class ProducerServiceImpl final : public evlog::v1::ProducerService::CallbackService {
 public:
  // None of the pointers is owned; all must outlive the gRPC server that runs this service
  // (every call has ended when grpc::Server::Shutdown returns).
  ProducerServiceImpl(storage::LogStore* store, PartitionRouter* router, DrainController* drain,
                      const EdgeLimits& limits);

  grpc::ServerBidiReactor<evlog::v1::ProduceRequest, evlog::v1::ProduceResponse>* Produce(
      grpc::CallbackServerContext* context) override;

  grpc::ServerUnaryReactor* ProduceOne(grpc::CallbackServerContext* context,
                                       const evlog::v1::ProduceRequest* request,
                                       evlog::v1::ProduceResponse* response) override;

  // Allocates an idempotent producer id (synced write; brief, so it runs inline).
  grpc::ServerUnaryReactor* InitProducer(grpc::CallbackServerContext* context,
                                         const evlog::v1::InitProducerRequest* request,
                                         evlog::v1::InitProducerResponse* response) override;

 private:
  storage::LogStore* const store_;
  PartitionRouter* const router_;
  DrainController* const drain_;
  const EdgeLimits limits_;
  StreamSlots stream_slots_;
};

}  // namespace evlog::server
