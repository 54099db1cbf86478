// ReaderServiceImpl: evlog.v1.ReaderService over a LogStore, on gRPC's synchronous API: each
// Read call runs on its own server thread, reads a chunk from the store, writes it (the
// blocking Write returns only once the transport took the message, so a slow reader slows
// the loop instead of growing a buffer), and in follow mode waits in LogStore::WaitForData in
// short slices, so that cancellation and draining are noticed within ~100 ms.
// The number of concurrent Read calls is capped (EdgeLimits::max_read_streams).
// With ReadRequest.raw_batches the chunks are whole stored batches from
// LogStore::ReadBatches, sent without decoding (raw_read.h); the response's first_offset and
// next_offset tell the client which of their records to deliver.
// The contract is evlog.proto.
//
// Thread safety: gRPC calls Read from many threads; all dependencies are thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include "evlog/v1/evlog.grpc.pb.h"
#include "server/drain.h"
#include "server/server_metrics.h"
#include "server/server_options.h"
#include "server/stream_slots.h"
#include "storage/log_store.h"

namespace evlog::server {

class ReaderServiceImpl final : public evlog::v1::ReaderService::Service {
 public:
  // `store`, `drain` and `metrics` are not owned and must outlive the gRPC server.
  ReaderServiceImpl(storage::LogStore* store, DrainController* drain, const EdgeLimits& limits,
                    ServerMetrics* metrics);

  grpc::Status Read(grpc::ServerContext* context, const evlog::v1::ReadRequest* request,
                    grpc::ServerWriter<evlog::v1::ReadResponse>* writer) override;

  // Read calls open now (for metrics). Any thread.
  int32_t open_streams() const { return stream_slots_.in_use(); }

 private:
  storage::LogStore* const store_;
  DrainController* const drain_;
  const EdgeLimits limits_;
  ServerMetrics* const metrics_;
  StreamSlots stream_slots_;
};

}  // namespace evlog::server
