// Options for opening a LogStore: durability, segment rolling, retention checks, memory.
//
// Every field has a default that suits a single production node. Read the durability section
// first: it says exactly what survives a crash and what does not.
#pragma once

#include <cstdint>
#include <functional>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rocksdb {
class Env;  // Only for tests that inject faults; users leave it null.
}

namespace evlog::storage {

// When an append is acknowledged relative to the fsync of its bytes.
enum class FsyncPolicy {
  // The batch's segment data file, then the write-ahead log, are fsynced before Append
  // returns. A crash, kill -9 or power cut loses nothing that was acknowledged. Concurrent
  // appends share the fsyncs (group commit).
  kAlways,
  // Append returns once the batch is written (in the OS page cache); the writer fsyncs the
  // data files and the write-ahead log every `fsync_interval`. A process crash loses nothing, but a
  // power cut or kernel crash can lose what was acknowledged during the last interval.
  kInterval,
};

struct Options {
  // Durability of acknowledged appends. Default: kAlways.
  FsyncPolicy fsync_policy = FsyncPolicy::kAlways;

  // With kInterval, the longest time acknowledged data may sit unsynced. Default: 100 ms.
  absl::Duration fsync_interval = absl::Milliseconds(100);

  // A topic's active segment rolls once it holds this many bytes. Smaller segments make
  // retention finer grained; larger ones mean fewer column families. Default: 256 MiB.
  uint64_t segment_max_bytes = 256ull << 20;

  // A non-empty active segment also rolls once it is this old, so that time-based retention
  // can drop it even if the topic is quiet. Default: 1 hour.
  absl::Duration segment_max_age = absl::Hours(1);

  // How often the background thread applies retention (and rolls aged segments). Zero turns
  // periodic retention off; RunRetention() can still be called. Default: 30 s.
  absl::Duration retention_check_interval = absl::Seconds(30);

  // Upper bound on the bytes the writer gathers into one write (and one fsync). Default: 8 MiB.
  uint64_t max_write_group_bytes = 8ull << 20;

  // Upper bound on appends waiting for the writer; Append fails fast with RESOURCE_EXHAUSTED
  // when this many bytes are queued. Default: 64 MiB.
  uint64_t max_queued_bytes = 64ull << 20;

  // Upper bound on one topic's appends waiting for the writer. The writer serves topics
  // round-robin, and a topic with nothing queued is always admitted, so a flood into one topic
  // is pushed back while others keep writing. Default: 32 MiB.
  uint64_t max_topic_queued_bytes = 32ull << 20;

  // Memory for RocksDB memtables, shared by all segments (a write buffer manager enforces it:
  // at the limit the writer thread waits for a flush, the queues fill, and appends are
  // refused with RESOURCE_EXHAUSTED; memory never grows past it). Default: 128 MiB.
  uint64_t memtable_budget_bytes = 128ull << 20;

  // Memory for RocksDB's block cache (reads of data that left the memtables). Default: 64 MiB.
  uint64_t block_cache_bytes = 64ull << 20;

  // An idempotent producer's sequence state on a partition is forgotten after this long
  // without appends there; a retry arriving later is then written again (a duplicate).
  // Default: 7 days.
  absl::Duration producer_state_ttl = absl::Hours(24 * 7);

  // Tests only: the RocksDB environment (file system) to use. Null means the default one.
  // Not owned; must outlive the store.
  rocksdb::Env* env = nullptr;

  // Tests only: the wall clock used for timestamps, segment ages and retention.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

}  // namespace evlog::storage
