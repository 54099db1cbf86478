// ServerOptions: everything evlogd is configured with, filled from its command-line flags
// (flags.h) and read by the services. Plain data; no behaviour.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/admission.h"
#include "storage/options.h"

namespace evlog::server {

// Limits enforced at the edge, before a request reaches storage. Defaults suit clients that
// use gRPC's default 4 MiB receive limit; see evlog.proto ("Sizes").
struct EdgeLimits {
  // Largest record: len(key) + len(value) + header keys and values. Default: 1 MiB.
  int64_t max_record_bytes = 1 << 20;
  // Largest serialized ProduceRequest. Default: 2 MiB.
  int64_t max_batch_bytes = 2 << 20;
  // Most records in one ProduceRequest (bounds the memory a tiny-record batch takes).
  // Default: 65536.
  int32_t max_batch_records = 65536;
  // Unanswered requests per produce stream before the server stops reading it. Default: 32.
  int32_t max_inflight_per_stream = 32;
  // Concurrent produce streams (Produce calls); more are refused with RESOURCE_EXHAUSTED.
  // Default: 1024.
  int32_t max_produce_streams = 1024;
  // Concurrent Read calls (each holds a server thread while it runs, follow or not); more are
  // refused with RESOURCE_EXHAUSTED. Default: 256.
  int32_t max_read_streams = 256;
  // The retry hint given with RESOURCE_EXHAUSTED. Default: 100 ms.
  int64_t retry_after_ms = 100;
};

struct ServerOptions {
  // host:port to listen on; port 0 picks a free port. Default: 127.0.0.1:7070.
  std::string listen = "127.0.0.1:7070";
  // The data directory (one RocksDB instance). Default: ./data.
  std::string data_dir = "./data";
  // host:port of the Prometheus endpoint (GET /metrics; port 0 picks a free port); empty
  // turns it off. Default: off.
  std::string metrics_listen;
  // The fsync policy as given on the command line ("always" or "interval:MS"), for display.
  std::string fsync = "always";
  EdgeLimits limits;
  // --memory-budget and its split (admission.h); the store's memory and queue options and the
  // in-flight budgets below are set from it unless finer flags override them.
  MemoryBudget memory;
  // In-flight produce bytes and connection caps (admission.h).
  AdmissionLimits admission;
  // How long a graceful shutdown waits for in-flight calls before cancelling them.
  // Default: 10 s.
  absl::Duration shutdown_timeout = absl::Seconds(10);
  // Options for the LogStore (durability, segments, memory).
  storage::Options store;
};

// The largest message the server may send: max(4 MiB, max_record_bytes + 64 KiB).
inline int64_t MaxResponseBytes(const EdgeLimits& limits) {
  const int64_t four_mib = 4 << 20;
  return limits.max_record_bytes + (64 << 10) > four_mib ? limits.max_record_bytes + (64 << 10)
                                                         : four_mib;
}

// The largest message the server accepts: 2 x max_batch_bytes + 64 KiB, so that a batch
// somewhat over the limit gets a precise per-request error instead of failing its stream.
inline int64_t MaxRequestBytes(const EdgeLimits& limits) {
  return 2 * limits.max_batch_bytes + (64 << 10);
}

// Splits a --listen value "host:port" (host may be "[v6]"; port 0..65535).
// Errors: INVALID_ARGUMENT naming the flag and the expected form.
absl::Status ParseListenAddress(const std::string& listen, std::string* host, int* port);

}  // namespace evlog::server
