// LogStore: evlog's durable, segmented, append-only log of topics and partitions.
//
// One LogStore owns one data directory (one RocksDB instance). It keeps topics, each with a
// fixed number of partitions; a partition is a dense sequence of offsets starting at 0.
// Records are appended in batches: a batch receives consecutive offsets and is stored once,
// in the format of batch_format.h, in its segment's data file (segment_file_format.h); RocksDB
// keeps where each batch is, the index and the metadata.
//
// Durability: with FsyncPolicy::kAlways (the default), Append returns only after the batch is
// fsynced (its data file, then RocksDB's write-ahead log with its location); concurrent
// appends are gathered by a single writer into one write and one fsync of each (group commit).
// See options.h.
//
// Offsets of a partition (on a single node the last two are equal):
//   start_offset <= high_watermark <= log_end_offset
//   start_offset:   lowest readable offset; rises as retention trims.
//   log_end_offset: next offset to assign; everything below it is written to the log.
//   high_watermark: everything below it is durable and visible to readers.
//
// Example:
//   auto store = evlog::storage::LogStore::Open("/var/lib/evlog", {});
//   if (!store.ok()) return store.status();
//   (*store)->CreateTopic("orders", {.partitions = 4});
//   auto appended = (*store)->Append("orders", 0, {{.key = "k", .value = "v"}});
//   auto read = (*store)->Read("orders", 0, /*offset=*/0, {});
//
// Thread safety: every method may be called from any thread concurrently, except that the
// store must not be destroyed while calls are in progress.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "storage/batch_validator.h"
#include "storage/options.h"
#include "storage/record.h"

namespace evlog::storage {

class LogStoreImpl;

// What an append was given.
struct AppendResult {
  int64_t base_offset = 0;  // offset of the first record of the batch
  int64_t last_offset = 0;  // offset of the last record of the batch
  int64_t append_time_ms = 0;
  // True if the batch was a retry of one already stored (idempotent producer): nothing was
  // written and the offsets are those of the original.
  bool duplicate = false;
};

// Bounds on one Read. At least one whole batch is returned when any data is available, even if
// it exceeds max_bytes, so a reader always makes progress.
struct ReadLimits {
  uint64_t max_bytes = 1 << 20;  // stop after batches totalling this many stored bytes
  int64_t max_records = 10000;   // stop after this many records
  // Read only offsets below this (exclusive); -1 means up to the high watermark.
  int64_t end_offset = -1;
};

struct ReadResult {
  std::vector<Record> records;  // in offset order, offsets dense
  int64_t next_offset = 0;      // where the next Read should start
  int64_t start_offset = 0;     // partition's start offset when read
  int64_t high_watermark = 0;   // partition's high watermark when read
};

// A stored batch, byte for byte (the format of batch_format.h), and its base offset.
struct RawBatch {
  int64_t base_offset = 0;
  std::string bytes;
};

// What ReadBatches returns.
struct RawReadResult {
  // Whole stored batches in offset order, dense: each starts where the previous one ends.
  std::vector<RawBatch> batches;
  int64_t start_offset = 0;    // partition's start offset when read
  int64_t high_watermark = 0;  // partition's high watermark when read
};

// A reader's place in one partition, kept between ReadBatches calls of the same reader so that
// a long read (a consumer catching up on a backlog) walks each segment with one storage
// iterator instead of creating one and seeking for every call: with many partitions per
// segment a fresh seek consulted every table file of the segment, which cost 3-4x the CPU per
// event of the read itself. The cursor only ever saves work: a call that cannot continue from
// it (another offset, segment or partition, or a cursor too old) reads as without one and
// takes the cursor over. It may pin up to a second's worth of storage files and memtables,
// so a reader resets it when it stops to wait for data, and the store lets go of whatever a
// cursor holds once it is a second old and not in a call (a reader stuck in a slow send must
// not keep memtables alive: they count against the memtable budget and would stall writes).
// Owned by the caller and used by one thread at a time, with one store, which it must not
// outlive.
class ReadCursor {
 public:
  ReadCursor();
  ~ReadCursor();
  ReadCursor(const ReadCursor&) = delete;
  ReadCursor& operator=(const ReadCursor&) = delete;

  // Lets go of the pinned storage state; the next read seeks afresh.
  void Reset();

  // Whether it pins storage state now (a read may continue from it). Any thread.
  bool holds_state();

  struct State;  // storage-internal (log_store.cc)

 private:
  friend class LogStoreImpl;
  absl::Mutex mu_;  // held by a read using the cursor, and by the store letting go of it
  std::unique_ptr<State> state_ ABSL_GUARDED_BY(mu_);
  LogStoreImpl* store_ = nullptr;  // the store it is registered with, from its first read
};

// Counters since open, for benchmarks and metrics.
struct StoreStats {
  uint64_t appends = 0;       // batches appended
  uint64_t records = 0;       // records appended
  uint64_t bytes = 0;         // stored batch bytes appended
  uint64_t write_groups = 0;  // RocksDB writes issued by the writer
  // fsyncs by the writer: under kAlways, per write group one per segment data file written and
  // one of the write-ahead log.
  uint64_t fsyncs = 0;
  uint64_t segments = 0;  // live segments
  uint64_t segments_rolled = 0;
  uint64_t segments_dropped = 0;
  // Next segments made ahead by the spare preparer, and those a roll took (the rest were
  // dropped: their topic was deleted, or the store closed first).
  uint64_t spares_made = 0;
  uint64_t spares_used = 0;
  // Microseconds writes spent delayed or stopped by RocksDB's write stalls (too many memtables
  // or L0 files), summed over writes: RocksDB's STALL_MICROS ticker.
  uint64_t stall_micros = 0;
};

// A consumer group's committed offset for one partition: the next offset the group reads.
struct GroupOffset {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t commit_time_ms = 0;
};

class LogStore {
 public:
  // Opens the store in `dir`, creating the directory and an empty store if absent.
  // Replays the write-ahead log and rebuilds every partition's offsets from stored metadata;
  // the time this takes grows with the number of partitions and segments, not records.
  // Batches past a segment's recorded durable length (only possible after a power cut under
  // kInterval) are checked, and a partition whose batch did not survive is truncated before it.
  // Errors: FAILED_PRECONDITION if another process holds the directory's LOCK or the directory
  // was written by an incompatible format version; DATA_LOSS if stored metadata is corrupt;
  // UNAVAILABLE/INTERNAL for I/O errors.
  static absl::StatusOr<std::unique_ptr<LogStore>> Open(const std::string& dir,
                                                        const Options& options);

  // Stops background threads, fails appends still queued with UNAVAILABLE, syncs the segment
  // data files and the write-ahead log and closes the database.
  virtual ~LogStore() = default;

  // Creates a topic. Durable when it returns.
  // Errors: INVALID_ARGUMENT for a name outside [A-Za-z0-9._-]{1,249}, partitions outside
  // 1..4096, a retention below -1 or 0, or a negative quota; ALREADY_EXISTS if the name is
  // taken.
  virtual absl::Status CreateTopic(absl::string_view name, const TopicConfig& config) = 0;

  // Deletes a topic and all its data; its segments are dropped, so their space is freed.
  // Appends to it that are still queued fail with NOT_FOUND. Errors: NOT_FOUND.
  virtual absl::Status DeleteTopic(absl::string_view name) = 0;

  // Names of all topics, sorted.
  virtual std::vector<std::string> ListTopics() const = 0;

  // The topic's configuration and per-partition offsets and sizes. Errors: NOT_FOUND.
  virtual absl::StatusOr<TopicInfo> DescribeTopic(absl::string_view name) const = 0;

  // --- Quotas: stored here so that they survive restarts; enforced by the server. ---

  // Changes a topic's quota (TopicConfig::quota): fields of `change` left empty keep their
  // value. Durable (synced) when it returns; DescribeTopic shows the new quota at once.
  // Returns the topic's new quota. Errors: NOT_FOUND; INVALID_ARGUMENT for a negative rate.
  virtual absl::StatusOr<Quota> AlterTopicQuota(absl::string_view topic,
                                                const QuotaChange& change) = 0;

  // Creates or changes the quota of producer `producer_id` (> 0), or with
  // kDefaultProducerQuotaId the default quota of every producer without its own. Fields of
  // `change` left empty keep their value (0, unlimited, for a new entry); a producer's own
  // 0/0 quota exempts it from the default. Synced. Returns the resulting quota.
  // Errors: INVALID_ARGUMENT for a negative producer id or rate.
  virtual absl::StatusOr<Quota> SetProducerQuota(int64_t producer_id,
                                                 const QuotaChange& change) = 0;

  // Removes a producer's own quota (or the default one), synced.
  // Errors: INVALID_ARGUMENT (negative id); NOT_FOUND if it has none.
  virtual absl::Status DeleteProducerQuota(int64_t producer_id) = 0;

  // Every stored producer quota, sorted by producer id (the default one, id 0, first).
  // Errors: DATA_LOSS for a corrupt entry; UNAVAILABLE/INTERNAL for I/O errors.
  virtual absl::StatusOr<std::vector<ProducerQuota>> ListProducerQuotas() const = 0;

  // Allocates a new idempotent producer id (> 0, epoch 0), durably; ids are never reused.
  virtual absl::StatusOr<ProducerInfo> InitProducer() = 0;

  // Appends `records` as one batch to a partition: they get consecutive offsets, in order.
  // Returns once the batch is durable under the fsync policy; the records are then visible to
  // readers. Records with a negative timestamp get the server's clock.
  // With an idempotent `producer` (producer_id >= 0), the sequence rules of producer_state.h
  // apply: a retried batch is answered with its original offsets (duplicate = true) and not
  // written again; ALREADY_EXISTS for an old duplicate whose offsets are no longer known;
  // FAILED_PRECONDITION for a sequence gap ("sequence gap") or a replaced epoch ("fenced").
  // Errors: NOT_FOUND (no such topic), OUT_OF_RANGE (no such partition), INVALID_ARGUMENT
  // (empty batch or batch over 64 MiB), RESOURCE_EXHAUSTED (writer queue full: retry later),
  // UNAVAILABLE (store closing or a storage write failed; the batch may or may not be stored).
  virtual absl::StatusOr<AppendResult> Append(absl::string_view topic, int32_t partition,
                                              std::vector<Record> records,
                                              const ProducerInfo& producer = {}) = 0;

  // Called exactly once with the outcome of an AppendAsync, on the writer thread (or on the
  // calling thread if the append is rejected before it is queued). Must not block.
  using AppendCallback = std::function<void(absl::StatusOr<AppendResult>)>;

  // Non-blocking Append: same contract, but the outcome goes to `done`.
  virtual void AppendAsync(absl::string_view topic, int32_t partition, std::vector<Record> records,
                           const ProducerInfo& producer, AppendCallback done) = 0;

  // Appends a batch given byte for byte in the format of batch_format.h (as a follower
  // stores its leader's batches). The batch's CRC is checked and its records must be valid;
  // the bytes are stored unchanged and the batch gets the next offsets.
  // Errors: as Append, plus DATA_LOSS if the CRC does not match and INVALID_ARGUMENT if the
  // bytes are not a well-formed batch.
  virtual absl::StatusOr<AppendResult> AppendRaw(absl::string_view topic, int32_t partition,
                                                 std::string batch) = 0;

  // Non-blocking append of a batch checked by ValidateBatch (batch_validator.h), stored byte
  // for byte: the fast path of producers that send encoded batches. Everything else is as
  // AppendAsync: the batch gets the next offsets; the producer fields of its header
  // (ProducerInfo: id, epoch, base sequence) get the idempotence rules of Append (a retry is
  // answered with the original offsets and duplicate = true); the writer's queues, group
  // commit, fairness and statistics are the same (both paths end in one enqueue). Timestamps
  // are the batch's own: none is replaced by the server's clock. The leader epoch is stored as
  // given (the caller decides what it accepts). `done` is called exactly once, as for
  // AppendAsync. Errors: NOT_FOUND, OUT_OF_RANGE (no such partition), RESOURCE_EXHAUSTED,
  // UNAVAILABLE, FAILED_PRECONDITION / ALREADY_EXISTS (sequence rules), as AppendAsync.
  virtual void AppendRawAsync(absl::string_view topic, int32_t partition, ValidatedBatch batch,
                              AppendCallback done) = 0;

  // Reads records from `offset` on, within `limits`, up to the high watermark.
  // Reading at the high watermark returns no records (use WaitForData to wait).
  // Errors: NOT_FOUND, OUT_OF_RANGE (no such partition, or offset below the start offset or
  // above the high watermark: the message gives the valid range), DATA_LOSS (a stored batch
  // fails its CRC: corruption is reported, never returned as data).
  virtual absl::StatusOr<ReadResult> Read(absl::string_view topic, int32_t partition,
                                          int64_t offset, const ReadLimits& limits) const = 0;

  // As Read, but returns whole stored batches byte for byte. The first batch may start before
  // `offset` (it is the batch that holds `offset`).
  virtual absl::StatusOr<std::vector<RawBatch>> ReadRaw(absl::string_view topic, int32_t partition,
                                                        int64_t offset,
                                                        uint64_t max_bytes) const = 0;

  // As Read, but returns whole stored batches byte for byte (for readers that decode
  // themselves, and followers), each checked (header and CRC32C) before it is returned. The
  // first batch is the one holding `offset` (it may start before it); reading stops after the
  // batch that reaches limits.end_offset or the high watermark (it may go past end_offset),
  // after max_bytes of batches (at least one batch), or once the batches hold
  // limits.max_records records at or after `offset`. Reading at the end returns no batches.
  // A batch that fails its check ends the result before it: the call returns the intact
  // batches before it, and a call starting in it fails.
  // With a `cursor` (may be null) filled by this reader's previous call, a call that starts
  // where that one ended continues its walk instead of seeking; it may then stop at the end of
  // what the cursor can see (data written after the cursor's walk began is read by a later
  // call). Errors: as Read; DATA_LOSS also if the batches below the high watermark are not
  // dense.
  virtual absl::StatusOr<RawReadResult> ReadBatches(absl::string_view topic, int32_t partition,
                                                    int64_t offset, const ReadLimits& limits,
                                                    ReadCursor* cursor = nullptr) const = 0;

  // Blocks until the partition's high watermark is above `offset`, the deadline passes, or the
  // store closes. Returns true if data at `offset` is readable, false on deadline or close.
  // Errors: NOT_FOUND, OUT_OF_RANGE (no such partition).
  virtual absl::StatusOr<bool> WaitForData(absl::string_view topic, int32_t partition,
                                           int64_t offset, absl::Time deadline) const = 0;

  // The first offset whose record timestamp is >= timestamp_ms, or the high watermark if no
  // such record exists. Timestamps are the producers'; if they are not monotonic, this is the
  // first record at or after T in offset order among batches whose largest timestamp is >= T.
  // Errors: NOT_FOUND, OUT_OF_RANGE (no such partition), DATA_LOSS.
  virtual absl::StatusOr<int64_t> OffsetForTimestamp(absl::string_view topic, int32_t partition,
                                                     int64_t timestamp_ms) const = 0;

  // Removes every batch at or above `new_end_offset`, atomically and durably, so that the
  // partition's end offset becomes `new_end_offset` (a follower reconciling its log).
  // REQUIRES: new_end_offset is a batch boundary within [start_offset, end_offset].
  // Errors: NOT_FOUND, OUT_OF_RANGE, INVALID_ARGUMENT (not a batch boundary).
  virtual absl::Status TruncateTo(absl::string_view topic, int32_t partition,
                                  int64_t new_end_offset) = 0;

  // Applies retention now: advances start offsets of partitions whose oldest segments are
  // past their topic's retention, and drops segments nobody can read any more. The background
  // thread calls this every Options::retention_check_interval.
  virtual absl::Status RunRetention() = 0;

  // Rolls every topic's non-empty active segment (a new segment takes the next appends).
  // Used by tests and by operators before a retention pass.
  virtual absl::Status RollSegments() = 0;

  // Fsyncs the segment data files written since the last sync, then the write-ahead log (for
  // kInterval; a no-op in effect for kAlways).
  virtual absl::Status Sync() = 0;

  virtual StoreStats Stats() const = 0;

  // --- Consumer groups: committed offsets and the coordinator's state. ---
  // Group names follow the topic name rules. Offsets are keyed by the topic's identity, so a
  // topic deleted and created again does not inherit the old topic's offsets.

  // Durably records `offsets` (partition -> next offset to read) of `group` for `topic`, in
  // one synced write: all or nothing.
  // Errors: INVALID_ARGUMENT (bad group name, empty list), NOT_FOUND (topic), OUT_OF_RANGE
  // (no such partition, or an offset below 0 or above the partition's end offset).
  virtual absl::Status CommitOffsets(absl::string_view group, absl::string_view topic,
                                     const std::vector<std::pair<int32_t, int64_t>>& offsets) = 0;

  // Every committed offset of `group` for topics that still exist, sorted by topic and
  // partition. An unknown group has none (an empty list, not an error).
  virtual absl::StatusOr<std::vector<GroupOffset>> FetchOffsets(absl::string_view group) const = 0;

  // Names of all groups that have committed offsets or stored state, sorted.
  virtual std::vector<std::string> ListGroups() const = 0;

  // Removes a group's committed offsets and state, durably. Errors: NOT_FOUND.
  virtual absl::Status DeleteGroup(absl::string_view group) = 0;

  // Stores an opaque blob for the group coordinator (generation, configuration), synced.
  // Errors: INVALID_ARGUMENT (bad group name).
  virtual absl::Status PutGroupState(absl::string_view group, absl::string_view state) = 0;

  // The blob last stored by PutGroupState. Errors: NOT_FOUND if none.
  virtual absl::StatusOr<std::string> GetGroupState(absl::string_view group) const = 0;
};

// True if `name` is a valid topic name: [A-Za-z0-9._-]{1,249}.
bool IsValidTopicName(absl::string_view name);

}  // namespace evlog::storage
