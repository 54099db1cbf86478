// Internal: the RocksDB-backed implementation of LogStore. Not part of the public API.
//
// Threads and ownership:
//   - One writer thread (writer.cc) is the only code that writes batches, assigns offsets,
//     rolls or drops segments, truncates, and deletes topics. Everything that changes the log
//     is a request on its queue, so these changes are totally ordered and offsets are assigned
//     in exactly the order batches reach the write-ahead log: no holes, even on a crash.
//     Appends waiting in the queue are gathered into one group: their frames are appended to
//     their segments' data files and fsynced, then their locations go to RocksDB in one write
//     and one fsync (segment_file_format.h, "Durability").
//   - Readers (any thread) take a snapshot of a partition under its topic's mutex (start
//     offset, high watermark, the segments holding it) and then read RocksDB without store
//     locks (a read with a ReadCursor holds that cursor's own mutex). A segment's column
//     family handle lives as long as any reader holds the segment, so a segment dropped by
//     retention stays readable to readers already in it.
//   - With FsyncPolicy::kInterval the writer thread also fsyncs the data files and then the
//     WAL, at least every interval while unsynced writes exist. Syncing only on the writer thread
//     means a sync never races a failed write (Debian's RocksDB asserts if the WAL is synced after
//     a failed write).
//   - A background thread (RetentionLoop) lets go of stale ReadCursors every second and runs
//     RunRetention() every retention_check_interval.
//   - A background thread (SparePreparerLoop, spare_segments.cc) creates a topic's next segment
//     (column family and data file: 5-10 ms of manifest, options-file and file fsyncs) once its
//     active one is half full, so that a roll on the writer thread, which every topic waits
//     for, only takes it. TopicState::create_mu keeps the two from creating the same segment.
//     Lock order: TopicState::create_mu, then TopicState::mu.
#pragma once

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "rocksdb/db.h"
#include "storage/file_syncer.h"
#include "storage/log_store.h"
#include "storage/meta_format.h"
#include "storage/producer_state.h"
#include "storage/segment_file.h"

namespace evlog::storage {

// One segment of one topic: its data file (the batches) and its column family (where each
// batch is in the file). Destroys the column family handle and closes the file when the last
// holder lets go, so a reader keeps reading a segment that retention dropped meanwhile.
struct Segment {
  Segment(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, uint32_t topic_id, uint64_t seq,
          int64_t created_ms, std::unique_ptr<SegmentFile> file)
      : db(db),
        cf(cf),
        topic_id(topic_id),
        seq(seq),
        created_ms(created_ms),
        file(std::move(file)) {}
  ~Segment() { db->DestroyColumnFamilyHandle(cf); }
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;

  rocksdb::DB* const db;
  rocksdb::ColumnFamilyHandle* const cf;
  const uint32_t topic_id;
  const uint64_t seq;
  // Set before the segment is shared: a spare's is reset when a roll takes it.
  int64_t created_ms;
  // Set before the segment is shared (Open may attach it after construction); appends on
  // the writer thread, reads on any thread (SegmentFile).
  std::unique_ptr<SegmentFile> file;
  uint64_t bytes = 0;        // batch bytes written; writer thread only
  bool spare_asked = false;  // the next segment was requested (RequestSpare); writer thread only
};

struct PartitionState {
  // Invariant: start_offset <= high_watermark <= log_end_offset.
  int64_t start_offset = 0;                      // guarded by TopicState::mu
  int64_t high_watermark = 0;                    // guarded by TopicState::mu
  int64_t log_end_offset = 0;                    // writer thread only (and Open)
  std::map<uint64_t, meta::IndexEntry> entries;  // by segment seq; guarded by TopicState::mu
  absl::flat_hash_map<int64_t, ProducerState> producers;  // writer thread only (and Open)
  // Truncations that removed data, since open; guarded by TopicState::mu. Offsets at or above a
  // truncation point are reused, so a reader's iterator from before one is stale (ReadCursor).
  uint64_t truncations = 0;
};

struct TopicState {
  std::string name;
  uint32_t id = 0;
  TopicConfig config;  // immutable; config.quota is left empty: the live one is `quota`
  int64_t created_ms = 0;

  // Held while a segment of this topic is created, by a roll or as a spare; before `mu`.
  absl::Mutex create_mu;
  mutable absl::Mutex mu;
  Quota quota ABSL_GUARDED_BY(mu);  // changed by AlterTopicQuota (under admin_mu_)
  std::map<uint64_t, std::shared_ptr<Segment>> segments ABSL_GUARDED_BY(mu);
  // The next segment (seq = active's + 1), made ahead by the spare preparer; not in `segments`,
  // not recorded in the metadata, empty. A roll takes it; an open drops a leftover one.
  std::shared_ptr<Segment> spare ABSL_GUARDED_BY(mu);
  bool spare_requested ABSL_GUARDED_BY(mu) = false;  // queued for the preparer, not yet made
  std::vector<PartitionState> partitions ABSL_GUARDED_BY(mu);
  bool deleted ABSL_GUARDED_BY(mu) = false;
  bool closed ABSL_GUARDED_BY(mu) = false;  // the store is closing: wake waiters
};

// A request to the writer thread.
struct WriteRequest {
  // An append (when `control` is empty).
  std::shared_ptr<TopicState> topic;
  int32_t partition = 0;
  std::string batch;
  int32_t record_count = 0;
  int64_t max_timestamp_ms = -1;
  int64_t append_time_ms = 0;
  ProducerInfo producer;
  LogStore::AppendCallback done;
  // Or a control operation that runs alone on the writer thread.
  std::function<void()> control;
};

class LogStoreImpl final : public LogStore {
 public:
  LogStoreImpl(const std::string& dir, const Options& options);
  ~LogStoreImpl() override;

  // Opens RocksDB and rebuilds the in-memory state; starts the threads.
  absl::Status Init();

  absl::Status CreateTopic(absl::string_view name, const TopicConfig& config) override;
  absl::Status DeleteTopic(absl::string_view name) override;
  absl::StatusOr<ProducerInfo> InitProducer() override;
  absl::StatusOr<Quota> AlterTopicQuota(absl::string_view topic,
                                        const QuotaChange& change) override;
  absl::StatusOr<Quota> SetProducerQuota(int64_t producer_id, const QuotaChange& change) override;
  absl::Status DeleteProducerQuota(int64_t producer_id) override;
  absl::StatusOr<std::vector<ProducerQuota>> ListProducerQuotas() const override;
  std::vector<std::string> ListTopics() const override;
  absl::StatusOr<TopicInfo> DescribeTopic(absl::string_view name) const override;
  absl::StatusOr<AppendResult> Append(absl::string_view topic, int32_t partition,
                                      std::vector<Record> records,
                                      const ProducerInfo& producer) override;
  void AppendAsync(absl::string_view topic, int32_t partition, std::vector<Record> records,
                   const ProducerInfo& producer, AppendCallback done) override;
  absl::StatusOr<AppendResult> AppendRaw(absl::string_view topic, int32_t partition,
                                         std::string batch) override;
  void AppendRawAsync(absl::string_view topic, int32_t partition, ValidatedBatch batch,
                      AppendCallback done) override;
  absl::StatusOr<ReadResult> Read(absl::string_view topic, int32_t partition, int64_t offset,
                                  const ReadLimits& limits) const override;
  absl::StatusOr<std::vector<RawBatch>> ReadRaw(absl::string_view topic, int32_t partition,
                                                int64_t offset, uint64_t max_bytes) const override;
  absl::StatusOr<RawReadResult> ReadBatches(absl::string_view topic, int32_t partition,
                                            int64_t offset, const ReadLimits& limits,
                                            ReadCursor* cursor) const override;
  absl::StatusOr<bool> WaitForData(absl::string_view topic, int32_t partition, int64_t offset,
                                   absl::Time deadline) const override;
  absl::StatusOr<int64_t> OffsetForTimestamp(absl::string_view topic, int32_t partition,
                                             int64_t timestamp_ms) const override;
  absl::Status TruncateTo(absl::string_view topic, int32_t partition,
                          int64_t new_end_offset) override;
  absl::Status RunRetention() override;
  absl::Status RollSegments() override;
  absl::Status Sync() override;
  StoreStats Stats() const override;
  absl::Status CommitOffsets(absl::string_view group, absl::string_view topic,
                             const std::vector<std::pair<int32_t, int64_t>>& offsets) override;
  absl::StatusOr<std::vector<GroupOffset>> FetchOffsets(absl::string_view group) const override;
  std::vector<std::string> ListGroups() const override;
  absl::Status DeleteGroup(absl::string_view group) override;
  absl::Status PutGroupState(absl::string_view group, absl::string_view state) override;
  absl::StatusOr<std::string> GetGroupState(absl::string_view group) const override;

 private:
  // A consistent view of one partition for a reader.
  struct PartitionSnapshot {
    int64_t start_offset = 0;
    int64_t high_watermark = 0;
    uint64_t truncations = 0;  // PartitionState::truncations
    // Segments holding the partition, oldest first, with the partition's entry in each.
    std::vector<std::pair<std::shared_ptr<Segment>, meta::IndexEntry>> segments;
  };

  int64_t NowMs() const;
  absl::StatusOr<std::shared_ptr<TopicState>> FindTopic(absl::string_view name) const;
  absl::StatusOr<PartitionSnapshot> Snapshot(absl::string_view topic, int32_t partition) const;
  // Walks stored batches of a partition from the batch holding `offset` up to `end`
  // (exclusive), calling visit(base_offset, bytes); stops when visit returns false. With a
  // `cursor` (may be null), continues its walk when it stands at `offset` (ending early at what
  // it can see), and leaves it at the last batch visited or past it (at the first batch not
  // visited, or at the end).
  template <typename Visit>
  absl::Status ScanBatches(const PartitionSnapshot& snap, uint32_t partition, int64_t offset,
                           int64_t end, Visit visit,
                           std::unique_ptr<ReadCursor::State>* cursor = nullptr) const;

  // Recovery (log_store.cc).
  absl::Status OpenDatabase();
  absl::Status LoadMetadata();
  rocksdb::ColumnFamilyOptions SegmentOptions() const;
  absl::StatusOr<std::shared_ptr<Segment>> CreateSegment(uint32_t topic_id, uint64_t seq,
                                                         int64_t created_ms);
  // Attaches data files to the segments found at open, deletes data files of segments that
  // no longer exist, and truncates partitions whose unsynced tail a power cut took
  // (segment_file_format.h, "Durability").
  absl::Status OpenSegmentFiles(const std::vector<std::shared_ptr<TopicState>>& topics);
  absl::Status RecoverUnsyncedTails(const std::shared_ptr<TopicState>& topic);
  // The length recorded ("d" key) below which `segment`'s data file is durable; 0 if none.
  uint64_t DurableLength(const Segment& segment) const;
  // Drops a segment's column family and deletes its data file (readers holding the segment
  // keep reading it). Failures are logged: the next open removes what is left.
  void DropSegment(const Segment& segment);

  // The one append path behind AppendAsync, AppendRawAsync and AppendRaw: queues `batch`
  // (a valid batch described by `header`) for `partition` of `topic` (range checked).
  void EnqueueAppend(std::shared_ptr<TopicState> topic, int32_t partition, std::string batch,
                     const BatchHeader& header, int64_t now_ms, AppendCallback done);

  // Writer thread (writer.cc).
  void Enqueue(WriteRequest req);
  absl::Status RunControl(std::function<absl::Status()> op);
  void WriterLoop();
  void WriteAppendGroup(std::vector<WriteRequest>& group);
  absl::Status RollSegment(TopicState* topic, rocksdb::WriteBatch* wb);

  // Spare segments (spare_segments.cc). RequestSpare: writer thread, once per segment, when the
  // active segment reaches half of segment_max_bytes; asks the preparer for the next segment.
  // NextSegment: writer thread, in a roll: segment `seq` of `topic` created at `created_ms`,
  // the spare if it is ready (or being made: then it waits for it), else made now; errors as
  // CreateSegment. TakeSpare: removes the topic's spare, if any, for the caller to drop.
  void RequestSpare(const std::shared_ptr<TopicState>& topic);
  absl::StatusOr<std::shared_ptr<Segment>> NextSegment(TopicState* topic, uint64_t seq,
                                                       int64_t created_ms)
      ABSL_LOCKS_EXCLUDED(topic->create_mu, topic->mu);
  static std::shared_ptr<Segment> TakeSpare(TopicState* topic) ABSL_LOCKS_EXCLUDED(topic->mu);
  void SparePreparerLoop() ABSL_LOCKS_EXCLUDED(threads_mu_);
  bool SpareWorkOrStop() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(threads_mu_) {
    return threads_stop_ || !spare_requests_.empty();
  }
  absl::Status ApplyRetention(const std::shared_ptr<TopicState>& topic);
  absl::Status DoDeleteTopic(const std::shared_ptr<TopicState>& topic);
  absl::Status DoTruncate(const std::shared_ptr<TopicState>& topic, int32_t partition,
                          int64_t new_end_offset);
  // Writer thread: fsyncs the WAL if writes are unsynced. After a failed write it refuses
  // (UNAVAILABLE) rather than touch the WAL again.
  absl::Status SyncOnWriter();
  // Writer thread, on a clean close (kAlways): records the durable lengths the last group
  // reached, so that the next open checks no frame. Failures are logged.
  void RecordDurableLengths();
  // Writer thread: a segment about to be dropped leaves the writer's lists, so that no durable
  // length is recorded for it afterwards.
  void ForgetSegment(const std::shared_ptr<Segment>& segment);
  // Background thread: lets go of stale read cursors every second and applies retention every
  // retention_check_interval.
  void RetentionLoop();

 public:
  // ReadCursor support (log_store.cc). ForgetCursor: a cursor's destructor unregisters it;
  // any thread. ReleaseStaleCursors: lets go of the storage state of registered cursors older
  // than their maximum age that no read is using; the retention thread calls it every second.
  void ForgetCursor(ReadCursor* cursor);
  void ReleaseStaleCursors();

 private:
  // `cursor`, registered with this store on its first read; null for null or another store's.
  ReadCursor* AdoptCursor(ReadCursor* cursor) const;

  const std::string dir_;
  const Options options_;
  std::unique_ptr<rocksdb::DB> db_;
  std::shared_ptr<rocksdb::FileSystem> fs_;  // RocksDB's and the data files'
  // Writer thread only: segments with frames written but not yet fsynced (kInterval).
  std::vector<std::shared_ptr<Segment>> unsynced_segments_;
  // Fsyncs the data files of a write group while the writer writes its locations (kAlways).
  FileSyncer syncer_;
  // Writer thread only (kAlways): segments whose durable length grew in the last group, whose
  // "d" record (meta_format.h) the next group or a clean close writes.
  std::vector<std::shared_ptr<Segment>> unrecorded_segments_;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  std::shared_ptr<rocksdb::Cache> block_cache_;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffer_manager_;
  // Segment handles found at open, before metadata assigns them to topics.
  struct PendingSegment {
    uint32_t topic_id;
    uint64_t seq;
    rocksdb::ColumnFamilyHandle* cf;
  };
  std::vector<PendingSegment> pending_segments_;

  mutable absl::Mutex topics_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<TopicState>> topics_ ABSL_GUARDED_BY(topics_mu_);
  uint32_t next_topic_id_ ABSL_GUARDED_BY(topics_mu_) = 1;
  absl::Mutex producer_id_mu_;
  int64_t next_producer_id_ ABSL_GUARDED_BY(producer_id_mu_) = 1;  // 0 means "none" on the wire
  // Serializes CreateTopic/DeleteTopic/AlterTopicQuota and the producer quota writes (their
  // read-modify-writes of metadata).
  absl::Mutex admin_mu_;

  // The writer's queues: appends wait in one FIFO per topic, served round-robin so that a
  // flood into one topic cannot starve another; control operations have their own FIFO.
  struct TopicQueue {
    std::deque<WriteRequest> requests;
    uint64_t bytes = 0;
  };
  absl::Mutex queue_mu_;
  std::deque<WriteRequest> control_queue_ ABSL_GUARDED_BY(queue_mu_);
  absl::flat_hash_map<TopicState*, TopicQueue> topic_queues_ ABSL_GUARDED_BY(queue_mu_);
  std::deque<TopicState*> ready_topics_ ABSL_GUARDED_BY(queue_mu_);  // with queued appends
  uint64_t queued_bytes_ ABSL_GUARDED_BY(queue_mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  // Set after a failed write: RocksDB is then read-only and nothing more is acknowledged.
  std::atomic<bool> write_failed_{false};

  // Cursors that have read from this store and still exist (ReadCursor).
  mutable absl::Mutex cursors_mu_;
  mutable absl::flat_hash_set<ReadCursor*> cursors_ ABSL_GUARDED_BY(cursors_mu_);

  mutable absl::Mutex threads_mu_;
  bool threads_stop_ ABSL_GUARDED_BY(threads_mu_) = false;
  std::thread writer_;
  std::thread retention_;  // RetentionLoop
  // Topics whose spare segment is wanted, oldest first (SparePreparerLoop).
  std::deque<std::shared_ptr<TopicState>> spare_requests_ ABSL_GUARDED_BY(threads_mu_);
  std::thread spare_preparer_;  // SparePreparerLoop

  std::atomic<uint64_t> stat_appends_{0}, stat_records_{0}, stat_bytes_{0}, stat_groups_{0},
      stat_fsyncs_{0}, stat_rolled_{0}, stat_dropped_{0}, stat_spares_made_{0},
      stat_spares_used_{0};
  // Writer thread only: kInterval bookkeeping.
  bool unsynced_ = false;
  absl::Time last_sync_ = absl::InfinitePast();
};

}  // namespace evlog::storage
