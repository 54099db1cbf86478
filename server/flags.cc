#include "server/flags.h"

#include <cstdint>
#include <string>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/byte_size.h"
#include "server/metrics_http.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:7070",
          "HOST:PORT to serve gRPC on. Port 0 picks a free port. Once ready, evlogd prints "
          "exactly one line `evlogd listening on HOST:PORT` to stdout.");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT to serve Prometheus metrics on (GET /metrics, text format 0.0.4); port 0 "
          "picks a free port; empty (the default) turns the endpoint off. When it is up, evlogd "
          "prints `evlogd metrics on HOST:PORT` to stderr before its ready line.");
ABSL_FLAG(std::string, data_dir, "./data",
          "Directory holding the log (one RocksDB instance); created if absent. Only one "
          "evlogd may use a directory at a time.");
ABSL_FLAG(std::string, fsync, "always",
          "When an append is acknowledged: `always` = after its bytes are fsynced (nothing "
          "acknowledged is lost on a crash or power cut; concurrent appends share one fsync); "
          "`interval:MS` = once written to the OS, with an fsync every MS milliseconds (a "
          "process crash loses nothing, a power cut can lose the last MS of acknowledged "
          "appends).");
ABSL_FLAG(std::string, max_record_bytes, "1MiB",
          "Largest record accepted: key + value + header keys and values, e.g. 1048576, "
          "512KiB, 1MiB.");
ABSL_FLAG(std::string, max_batch_bytes, "2MiB",
          "Largest produce request accepted (its serialized size; for a pre-encoded batch, "
          "the batch's size), e.g. 2MiB. Must exceed "
          "--max-record-bytes. A request up to twice this size is refused with a precise "
          "INVALID_ARGUMENT; a larger message fails its whole call.");
ABSL_FLAG(int32_t, max_batch_records, 65536, "Most records accepted in one produce request.");
ABSL_FLAG(int32_t, max_inflight_per_stream, 32,
          "Unanswered requests per produce stream; beyond this evlogd stops reading the stream "
          "until responses go out (backpressure).");
ABSL_FLAG(int32_t, max_produce_streams, 1024,
          "Concurrent produce streams; more are refused with RESOURCE_EXHAUSTED.");
ABSL_FLAG(int32_t, max_read_streams, 256,
          "Concurrent Read calls (follow or not; each holds a thread); more are refused with "
          "RESOURCE_EXHAUSTED.");
ABSL_FLAG(std::string, max_queued_bytes, "0",
          "Bytes of appends waiting for the storage writer (one topic may hold half); beyond "
          "this produce requests fail fast with RESOURCE_EXHAUSTED and a retry hint, e.g. 64MiB. "
          "0: 1/8 of --memory-budget.");
ABSL_FLAG(std::string, memory_budget, "1GiB",
          "Memory evlogd may use, e.g. 1048576, 512MiB, 2GiB (at least 64MiB). Divided as: "
          "1/4 RocksDB memtables (writes stall, and produce requests are refused, when full), "
          "1/8 block cache, 1/8 storage writer queues, 1/8 produce requests in flight (1/8 of "
          "that per connection), 1/8 gRPC buffers (its ResourceQuota), and 1/4 left for code, "
          "threads and everything not budgeted. --memtable-budget-bytes, --block-cache-bytes "
          "and --max-queued-bytes override their share. evlogd logs the split at startup.");
ABSL_FLAG(std::string, max_write_group_bytes, "256KiB",
          "Most bytes the storage writer gathers into one write and fsync (at least one "
          "request), e.g. 256KiB. Smaller groups let other topics' appends in sooner during a "
          "flood (every topic waits for the group being written); larger ones mean fewer "
          "fsyncs.");
ABSL_FLAG(int32_t, max_connections, 1000,
          "Connections that may have produce calls in progress at once; a produce call from "
          "another connection is refused with RESOURCE_EXHAUSTED and a retry hint. Reads, "
          "admin and health calls are not counted, so they keep working.");
ABSL_FLAG(int32_t, max_streams_per_connection, 100,
          "Concurrent calls (streams) per connection, announced as HTTP/2 "
          "MAX_CONCURRENT_STREAMS: a client queues further calls until one of its calls ends.");
ABSL_FLAG(int64_t, retry_after_ms, 100,
          "Retry hint, in milliseconds, sent with RESOURCE_EXHAUSTED where no better one is "
          "known (stream caps); admission control computes its hints from how fast its "
          "budgets drain (10..1000 ms) and stretches this one for refused connections.");
ABSL_FLAG(absl::Duration, shutdown_timeout, absl::Seconds(10),
          "On SIGTERM/SIGINT: how long to wait for in-flight calls before cancelling them "
          "(e.g. 10s, 500ms). A second signal exits at once.");
ABSL_FLAG(std::string, segment_max_bytes, "256MiB",
          "A topic's active segment rolls after this many bytes, e.g. 256MiB (retention drops "
          "whole segments).");
ABSL_FLAG(absl::Duration, segment_max_age, absl::Hours(1),
          "A non-empty active segment rolls after this age, so time retention can drop it.");
ABSL_FLAG(absl::Duration, retention_check_interval, absl::Seconds(30),
          "How often retention runs (0 turns the background check off).");
ABSL_FLAG(std::string, memtable_budget_bytes, "0",
          "Memory for RocksDB memtables, shared by all segments, e.g. 128MiB. 0: 1/4 of "
          "--memory-budget.");
ABSL_FLAG(std::string, block_cache_bytes, "0",
          "Memory for RocksDB's block cache, e.g. 64MiB. 0: 1/8 of --memory-budget.");

namespace evlog::server {
namespace {

// The value of a byte-size flag (common/byte_size.h: 1048576, 512KiB, 2MiB...), named `flag`
// in errors. Errors: INVALID_ARGUMENT for anything ParseByteSize refuses (negative included).
absl::StatusOr<int64_t> ByteSizeFlag(const char* flag, const absl::Flag<std::string>& value) {
  return ParseByteSize(flag, absl::GetFlag(value));
}

absl::Status Positive(const char* flag, int64_t value) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", value, " must be a positive number"));
}

}  // namespace

void NormalizeFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (std::strcmp(arg, "--") == 0) return;
    if (arg[0] != '-' || arg[1] != '-') continue;
    for (char* c = arg + 2; *c != '\0' && *c != '='; ++c) {
      if (*c == '-') *c = '_';
    }
  }
}

std::string UsageText() {
  std::string text =
      "evlogd: the evlog event-log server (gRPC).\n\n"
      "Usage: evlogd [--listen=HOST:PORT] [--data-dir=DIR] [--fsync=always|interval:MS] "
      "[--metrics-listen=HOST:PORT] [flags]\n\n"
      "Serves evlog.v1 (ProducerService, ReaderService, AdminService), grpc.health.v1 and "
      "server reflection. When ready it prints `evlogd listening on HOST:PORT` to stdout; logs "
      "go to stderr. SIGTERM or SIGINT shuts it down gracefully (exit 0); a second signal exits "
      "at once (exit 128+signal).\n\nFlags:\n";
  std::vector<const absl::CommandLineFlag*> flags;
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (absl::StrContains(flag->Filename(), "server/flags.cc")) flags.push_back(flag);
  }
  std::sort(flags.begin(), flags.end(),
            [](const auto* a, const auto* b) { return a->Name() < b->Name(); });
  for (const absl::CommandLineFlag* flag : flags) {
    absl::StrAppend(&text, "  --", absl::StrReplaceAll(flag->Name(), {{"_", "-"}}),
                    " (default: ", flag->DefaultValue(), ")\n      ", flag->Help(), "\n");
  }
  absl::StrAppend(&text, "  --help\n      Print this text and exit.\n");
  return text;
}

absl::Status ParseFsyncPolicy(const std::string& value, storage::Options* options) {
  if (value == "always") {
    options->fsync_policy = storage::FsyncPolicy::kAlways;
    return absl::OkStatus();
  }
  int64_t ms = 0;
  if (absl::StartsWith(value, "interval:") &&
      absl::SimpleAtoi(value.substr(sizeof("interval:") - 1), &ms) && ms >= 1 && ms <= 60000) {
    options->fsync_policy = storage::FsyncPolicy::kInterval;
    options->fsync_interval = absl::Milliseconds(ms);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--fsync=\"", value, "\" is not valid; use `always` or `interval:MS` with MS in 1..60000"));
}

absl::StatusOr<ServerOptions> OptionsFromFlags() {
  ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  std::string host;
  int port = 0;
  if (absl::Status s = ParseListenAddress(options.listen, &host, &port); !s.ok()) return s;
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (absl::Status s = ValidateMetricsListen(options.metrics_listen); !s.ok()) return s;
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("--data-dir is empty; give a directory");
  }
  options.fsync = absl::GetFlag(FLAGS_fsync);
  if (absl::Status s = ParseFsyncPolicy(options.fsync, &options.store); !s.ok()) return s;

  EdgeLimits& limits = options.limits;
  absl::StatusOr<int64_t> record_bytes = ByteSizeFlag("max-record-bytes", FLAGS_max_record_bytes);
  if (!record_bytes.ok()) return record_bytes.status();
  limits.max_record_bytes = *record_bytes;
  absl::StatusOr<int64_t> batch_bytes = ByteSizeFlag("max-batch-bytes", FLAGS_max_batch_bytes);
  if (!batch_bytes.ok()) return batch_bytes.status();
  limits.max_batch_bytes = *batch_bytes;
  limits.max_batch_records = absl::GetFlag(FLAGS_max_batch_records);
  limits.max_inflight_per_stream = absl::GetFlag(FLAGS_max_inflight_per_stream);
  limits.max_produce_streams = absl::GetFlag(FLAGS_max_produce_streams);
  limits.max_read_streams = absl::GetFlag(FLAGS_max_read_streams);
  limits.retry_after_ms = absl::GetFlag(FLAGS_retry_after_ms);
  absl::StatusOr<int64_t> budget_bytes =
      ParseByteSize("memory-budget", absl::GetFlag(FLAGS_memory_budget));
  if (!budget_bytes.ok()) return budget_bytes.status();
  absl::StatusOr<MemoryBudget> budget = SplitMemoryBudget(*budget_bytes);
  if (!budget.ok()) return budget.status();
  options.memory = *budget;
  options.admission.max_inflight_bytes = budget->inflight;
  options.admission.max_connection_inflight_bytes = budget->inflight_per_connection;
  options.admission.max_connections = absl::GetFlag(FLAGS_max_connections);
  options.admission.max_streams_per_connection = absl::GetFlag(FLAGS_max_streams_per_connection);
  options.admission.base_retry_after_ms = limits.retry_after_ms;
  for (auto [flag, value] :
       {std::pair<const char*, int64_t>{"max-record-bytes", limits.max_record_bytes},
        {"max-batch-bytes", limits.max_batch_bytes},
        {"max-batch-records", limits.max_batch_records},
        {"max-inflight-per-stream", limits.max_inflight_per_stream},
        {"max-produce-streams", limits.max_produce_streams},
        {"max-read-streams", limits.max_read_streams},
        {"retry-after-ms", limits.retry_after_ms},
        {"max-connections", options.admission.max_connections},
        {"max-streams-per-connection", options.admission.max_streams_per_connection}}) {
    if (absl::Status s = Positive(flag, value); !s.ok()) return s;
  }
  if (limits.max_batch_bytes <= limits.max_record_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max-batch-bytes=", limits.max_batch_bytes, " must exceed --max-record-bytes=",
        limits.max_record_bytes, " (a batch of one record needs framing too)"));
  }
  if (limits.max_batch_bytes > (512 << 20)) {
    return absl::InvalidArgumentError("--max-batch-bytes must be at most 512 MiB");
  }
  options.shutdown_timeout = absl::GetFlag(FLAGS_shutdown_timeout);
  if (options.shutdown_timeout < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--shutdown-timeout must not be negative");
  }

  storage::Options& store = options.store;
  // The finer memory flags override their share of --memory-budget; 0 keeps the share.
  int64_t queued = 0, segment = 0, memtables = 0, cache = 0, group = 0;
  for (auto [flag, value, out] :
       {std::tuple<const char*, const absl::Flag<std::string>*, int64_t*>{
            "max-queued-bytes", &FLAGS_max_queued_bytes, &queued},
        {"segment-max-bytes", &FLAGS_segment_max_bytes, &segment},
        {"memtable-budget-bytes", &FLAGS_memtable_budget_bytes, &memtables},
        {"block-cache-bytes", &FLAGS_block_cache_bytes, &cache},
        {"max-write-group-bytes", &FLAGS_max_write_group_bytes, &group}}) {
    absl::StatusOr<int64_t> bytes = ByteSizeFlag(flag, *value);
    if (!bytes.ok()) return bytes.status();
    *out = *bytes;
  }
  if (absl::Status s = Positive("segment-max-bytes", segment); !s.ok()) return s;
  if (absl::Status s = Positive("max-write-group-bytes", group); !s.ok()) return s;
  store.max_queued_bytes = static_cast<uint64_t>(queued > 0 ? queued : budget->writer_queue);
  store.max_topic_queued_bytes = store.max_queued_bytes / 2;
  store.max_write_group_bytes = static_cast<uint64_t>(group);
  store.segment_max_bytes = static_cast<uint64_t>(segment);
  store.memtable_budget_bytes =
      static_cast<uint64_t>(memtables > 0 ? memtables : budget->memtables);
  store.block_cache_bytes = static_cast<uint64_t>(cache > 0 ? cache : budget->block_cache);
  store.segment_max_age = absl::GetFlag(FLAGS_segment_max_age);
  store.retention_check_interval = absl::GetFlag(FLAGS_retention_check_interval);
  if (store.segment_max_age <= absl::ZeroDuration() ||
      store.retention_check_interval < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "--segment-max-age must be positive and --retention-check-interval not negative");
  }
  return options;
}

}  // namespace evlog::server
