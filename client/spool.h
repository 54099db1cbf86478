// Spool: a producer's durable local buffer of batches, in a directory of its own (one RocksDB
// instance; format in client/spool_format.h).
//
// Why it exists: when evlogd cannot be reached, a producer must keep accepting events without
// losing any (DESIGN.md, promise 4). The spool is a write-ahead buffer: a batch is appended
// (and fsynced) before it is sent, and deleted once the server acknowledged it, so an event
// accepted into the spool survives a crash of the producer and is delivered when the server
// answers again, exactly once (see below).
//
// Batches, ids and sequences: the unit is a batch of records for one (topic, partition). An
// append gives each batch the next spool id (1, 2, ...; the order of acceptance, across
// restarts) and the partition's next sequence numbers (0, 1, 2, ... per record, per
// (topic, partition)), and writes the batch, the partition's next sequence and the next id in
// ONE synced write. A batch's boundaries and sequence numbers therefore never change: sending
// it again after any crash is an exact retry, which the server recognises by (producer id,
// partition, sequence range) and answers without storing it twice.
//
// Group commit: appends queued while one is being written are written together by that
// writer in one RocksDB write and one fsync (LevelDB's writer queue), so concurrent appenders
// share fsyncs. Ids and sequences are assigned in the order of the write, so a crash can lose
// only whole appends that were never reported durable, never leave a hole in a partition's
// sequence.
//
// Capacity: bytes of batch values (pending and dead-lettered) are bounded by
// SpoolOptions::max_bytes. Room is taken with Reserve before records are gathered into a batch,
// and given back when batches are acknowledged (Ack). When full, Reserve blocks until room is
// freed or its deadline passes, or fails at once, per SpoolOptions::when_full; it never drops
// anything. Dead letters keep their room until an operator removes the spool directory.
//
// Producer ids: the spool keeps the producer id (InitProducer) under which its batches are
// sent, and per partition a list of overrides "from spool id N on, producer id P": after a
// batch was refused for good (dead-lettered) the partition's later batches can never follow it
// under the old id, so they are sent under a fresh one, which the server accepts at any
// sequence. An override with P == 0 means "a fresh id is still to be asked for".
//
// Thread safety: every method may be called from any thread concurrently. The spool directory
// is locked (RocksDB's LOCK file) while a Spool is open: a second writer fails to open it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace evlog::client {

enum class SpoolFullPolicy {
  kBlock,  // Reserve waits for room until its deadline, then RESOURCE_EXHAUSTED
  kFail,   // Reserve fails at once with RESOURCE_EXHAUSTED
};

struct SpoolOptions {
  // Bound on the bytes of batch values in the spool (pending and dead letters). Default: 1 GiB.
  // The RocksDB files take somewhat more on disk until compaction reclaims deleted batches.
  int64_t max_bytes = int64_t{1} << 30;
  // What Reserve does when the spool is full. Default: block.
  SpoolFullPolicy when_full = SpoolFullPolicy::kBlock;
};

// A batch to append. `records` is a serialized evlog.v1.ProduceRequest holding only its
// records (field 4); see spool_format.h.
struct NewSpoolBatch {
  std::string topic;
  int32_t partition = 0;
  int32_t record_count = 0;
  std::string records;
};

// A batch as stored.
struct SpoolBatch {
  uint64_t id = 0;  // spool id
  std::string topic;
  int32_t partition = 0;
  int32_t base_sequence = 0;
  int32_t record_count = 0;
  int64_t spooled_ms = 0;
  int64_t bytes = 0;    // size of its stored value (what it counts against max_bytes)
  std::string records;  // as in NewSpoolBatch
  // Not OK if the stored value failed its checks (DATA_LOSS): then only `id` and `bytes` are
  // set, and the batch must not be sent (dead-letter it).
  absl::Status integrity;
};

// Where an appended batch went.
struct AppendedBatch {
  uint64_t id = 0;
  int32_t base_sequence = 0;
  int64_t bytes = 0;
};

// What an Ack releases, per batch (the caller knows it from the SpoolBatch it sent).
struct SpoolBatchRef {
  uint64_t id = 0;
  int32_t record_count = 0;
  int64_t bytes = 0;
};

struct ProducerIdentity {
  int64_t producer_id = 0;  // 0: none yet
  int32_t epoch = 0;
};

// The server's limits as last seen (0: unknown).
struct CachedServerLimits {
  int64_t max_record_bytes = 0;
  int64_t max_batch_bytes = 0;
  int32_t max_batch_records = 0;
};

// Counters of the open spool (cheap; kept in memory).
struct SpoolCounters {
  int64_t pending_batches = 0;
  int64_t pending_records = 0;
  int64_t dead_batches = 0;
  int64_t dead_records = 0;
  int64_t bytes = 0;     // pending + dead letters, what counts against max_bytes
  int64_t reserved = 0;  // room taken by Reserve and not yet appended
};

// A full description of a spool, for `evlog spool status` (built by scanning it).
struct SpoolPartitionStatus {
  std::string topic;
  int32_t partition = 0;
  int64_t batches = 0;  // pending
  int64_t records = 0;
  int64_t bytes = 0;
  int64_t oldest_ms = 0;               // spooled_ms of the oldest pending batch (0: none)
  int64_t next_sequence = 0;           // of the next record appended
  std::vector<std::string> overrides;  // "from spool id N: producer id P" lines
};
struct SpoolDeadLetter {
  uint64_t id = 0;
  std::string topic;
  int32_t partition = 0;
  int32_t records = 0;
  int32_t base_sequence = 0;
  int64_t bytes = 0;
  std::string reason;  // the JSON text of its 'E' entry
};
struct SpoolStatus {
  std::string dir;
  ProducerIdentity producer;
  uint64_t next_id = 1;
  int64_t pending_batches = 0;
  int64_t pending_records = 0;
  int64_t bytes = 0;  // pending + dead letters
  int64_t oldest_ms = 0;
  std::vector<SpoolPartitionStatus> partitions;  // sorted by topic, partition
  std::vector<SpoolDeadLetter> dead_letters;     // by id
  std::map<std::string, int32_t> partition_counts;
};

class Spool {
 public:
  // Opens (creating if needed) the spool in directory `dir`. Errors: FAILED_PRECONDITION
  // "spool DIR is in use by another process" if another Spool holds it; DATA_LOSS if its
  // format version is unknown; INTERNAL / UNAVAILABLE for I/O errors (with RocksDB's message).
  static absl::StatusOr<std::unique_ptr<Spool>> Open(const std::string& dir,
                                                     const SpoolOptions& options = {});

  // Describes the spool in `dir` without locking it (a RocksDB read-only open), so it works
  // while a producer uses it (the view is then as of the open). Errors: NOT_FOUND if there is
  // no spool in `dir`; DATA_LOSS; INTERNAL.
  static absl::StatusOr<SpoolStatus> Inspect(const std::string& dir);

  // Closes the database; waiters in Reserve / WaitForPending return. Unsynced acks may be lost
  // by a crash (their batches are then sent again and deduplicated by the server).
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  const std::string& dir() const;

  // Takes `bytes` of room for batches about to be appended. If the spool has no room: with
  // kBlock waits until Ack frees enough or `deadline`, with kFail returns at once; either way
  // RESOURCE_EXHAUSTED saying the spool is full, never a silent drop. A request larger than
  // max_bytes fails at once with RESOURCE_EXHAUSTED. CANCELLED once the spool closes.
  absl::Status Reserve(int64_t bytes, absl::Time deadline);
  // Gives back room taken with Reserve and not used.
  void Unreserve(int64_t bytes);

  // Appends `batches` in order, in one synced write shared with concurrent appenders, using
  // `reserved` bytes of room taken with Reserve (the difference to the batches' exact size is
  // settled: excess returned, a shortfall taken without checking the bound). Returns each
  // batch's id and base sequence, once it is durable. On error (I/O) nothing of it is stored,
  // the reservation is returned, and the status is INTERNAL/UNAVAILABLE with RocksDB's message.
  // REQUIRES: each batch has 1..INT32_MAX records and a non-empty topic.
  absl::StatusOr<std::vector<AppendedBatch>> AppendAll(std::vector<NewSpoolBatch> batches,
                                                       int64_t reserved);
  // Reserve(exact size, deadline) + AppendAll of one batch.
  absl::StatusOr<AppendedBatch> Append(NewSpoolBatch batch, absl::Time deadline);

  // Up to `max_batches` pending batches with ids >= from_id, in id order, stopping after about
  // `max_bytes`. Errors: INTERNAL for I/O errors. A value that fails its checks is returned
  // with `integrity` set (see SpoolBatch).
  absl::StatusOr<std::vector<SpoolBatch>> Read(uint64_t from_id, int max_batches,
                                               int64_t max_bytes);

  // Deletes acknowledged batches and frees their room. Not synced: a crash may bring them back,
  // and the server answers their resend as a duplicate. Errors: INTERNAL for I/O errors.
  absl::Status Ack(const std::vector<SpoolBatchRef>& batches);

  // Moves pending batch `ref.id` to the dead-letter area with `reason`, and makes the
  // partition's batches from ref.id + 1 on use a fresh producer id (an override with id 0),
  // in one synced write. `producer_id` is the id the batch was refused under (for the record).
  absl::Status DeadLetter(const SpoolBatchRef& ref, const std::string& topic, int32_t partition,
                          const absl::Status& reason, int64_t producer_id);

  // The producer the spool's batches are sent under. SetProducer writes it, synced.
  ProducerIdentity Producer();
  absl::Status SetProducer(const ProducerIdentity& producer);

  // The producer id for pending batch `id` of (topic, partition): the latest override with
  // from <= id, else Producer(). A result with producer_id 0 means a fresh id must be obtained
  // first; `override_from` then says which override to fill with ResolveOverride (0: the
  // spool's own producer, use SetProducer).
  ProducerIdentity ProducerFor(const std::string& topic, int32_t partition, uint64_t id,
                               uint64_t* override_from);
  // Fills override `from` of (topic, partition) with a fresh producer, synced.
  absl::Status ResolveOverride(const std::string& topic, int32_t partition, uint64_t from,
                               const ProducerIdentity& producer);

  // Cached partition counts and server limits (written unsynced: they are hints).
  std::optional<int32_t> PartitionCount(const std::string& topic);
  absl::Status SetPartitionCount(const std::string& topic, int32_t count);
  CachedServerLimits Limits();
  absl::Status SetLimits(const CachedServerLimits& limits);

  // The highest id appended so far (0: none ever).
  uint64_t LastId();
  // Waits until an append made LastId() > `after_id`, or `deadline`, or the spool closes.
  // Returns LastId().
  uint64_t WaitForAppend(uint64_t after_id, absl::Time deadline);

  SpoolCounters Counters();

  // Stops waiters (Reserve, WaitForAppend) with CANCELLED; later Reserve calls fail. The
  // database stays open until destruction.
  void Shutdown();

 private:
  class Impl;
  explicit Spool(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace evlog::client
