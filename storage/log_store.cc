// LogStore: opening and recovery, topic administration, and the read path. The write path
// (the writer thread) is in writer.cc.
#include <algorithm>
#include <filesystem>
#include <limits>
#include <optional>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "rocksdb/cache.h"
#include "rocksdb/env.h"
#include "rocksdb/options.h"
#include "rocksdb/statistics.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rocksdb/write_buffer_manager.h"
#include "spdlog/spdlog.h"
#include "storage/batch_codec.h"
#include "storage/batch_format.h"
#include "storage/coding.h"
#include "storage/log_store_impl.h"
#include "storage/rocks_status.h"
#include "storage/rocksdb_crc32c.h"
#include "storage/segment_file_format.h"

namespace evlog::storage {

namespace {

// Whether `cf` holds no key (a read error counts as not empty: nothing is dropped on doubt).
bool ColumnFamilyIsEmpty(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), cf));
  it->SeekToFirst();
  return !it->Valid() && it->status().ok();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LogStore>> LogStore::Open(const std::string& dir,
                                                         const Options& options) {
  auto store = std::make_unique<LogStoreImpl>(dir, options);
  absl::Status s = store->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<LogStore>(std::move(store));
}

LogStoreImpl::LogStoreImpl(const std::string& dir, const Options& options)
    : dir_(dir), options_(options) {}

int64_t LogStoreImpl::NowMs() const { return absl::ToUnixMillis(options_.clock()); }

rocksdb::ColumnFamilyOptions LogStoreImpl::SegmentOptions() const {
  rocksdb::ColumnFamilyOptions cf;
  // Every key is written once and leaves with its segment: compaction would only rewrite
  // data (DESIGN.md "Storage"). L0 limits are raised so flushed files never stall writes;
  // segment size bounds the number of files a read consults.
  cf.disable_auto_compactions = true;
  cf.level0_file_num_compaction_trigger = 1 << 20;
  cf.level0_slowdown_writes_trigger = 1 << 20;
  cf.level0_stop_writes_trigger = 1 << 20;
  // A quarter of the memtable budget at most, so that a full memtable is flushed while others
  // take writes: one memtable as large as the whole budget would stall every write until its
  // flush ended.
  cf.write_buffer_size =
      std::min<uint64_t>(64 << 20, std::max<uint64_t>(options_.memtable_budget_bytes / 4, 4 << 20));
  cf.max_write_buffer_number = 4;
  cf.arena_block_size = 1 << 20;  // small arenas: idle segments hold little memory
  cf.compression = rocksdb::kNoCompression;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = block_cache_;
  table.block_size = 64 << 10;
  // XXH3 instead of the default CRC32C for table blocks: Debian's RocksDB is built portable,
  // so its CRC32C runs in software (~1.1 GB/s); flushing memtables spent ~4% of evlogd's CPU
  // on it under a 100-byte produce load. Each table records its checksum type, so tables
  // written before still read. (Batches keep their own CRC32C; the WAL's is fixed.)
  table.checksum = rocksdb::kXXH3;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return cf;
}

absl::Status LogStoreImpl::OpenDatabase() {
  block_cache_ = rocksdb::NewLRUCache(options_.block_cache_bytes);
  write_buffer_manager_ =
      std::make_shared<rocksdb::WriteBufferManager>(options_.memtable_budget_bytes, nullptr,
                                                    /*allow_stall=*/true);

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.write_buffer_manager = write_buffer_manager_;
  db_options.max_total_wal_size = 256 << 20;
  db_options.max_background_jobs = 2;
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.keep_log_file_num = 4;
  // Recovered WAL data is flushed at open, so that it no longer depends on write-ahead log
  // files the previous process may never have synced (it crashed under fsync=interval):
  // otherwise a later power cut could take locations and index entries older than what the new
  // process syncs on top of them. Segment column families hold only small locations now, so
  // the small files this leaves per reopen cost little.
  db_options.avoid_flush_during_recovery = false;
  db_options.max_manifest_file_size = 64 << 20;
  if (options_.env != nullptr) db_options.env = options_.env;
  fs_ = options_.env != nullptr ? options_.env->GetFileSystem() : rocksdb::FileSystem::Default();
  // Tickers only (no histograms or timers): per-core counters, cheap enough to leave on. They
  // give StoreStats::stall_micros.
  db_options.statistics = rocksdb::CreateDBStatistics();
  db_options.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);

  std::vector<std::string> names;
  rocksdb::Status ls = rocksdb::DB::ListColumnFamilies(db_options, dir_, &names);
  if (!ls.ok()) names = {rocksdb::kDefaultColumnFamilyName};  // a new directory
  if (std::find(names.begin(), names.end(), meta::kMetaColumnFamily) == names.end()) {
    names.push_back(meta::kMetaColumnFamily);
  }

  rocksdb::ColumnFamilyOptions meta_options;
  meta_options.write_buffer_size = 8 << 20;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : names) {
    uint32_t topic_id;
    uint64_t seq;
    const bool is_segment = meta::ParseSegmentName(name, &topic_id, &seq);
    descriptors.emplace_back(name, is_segment ? SegmentOptions() : meta_options);
  }

  if (options_.env == nullptr) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create data directory ", dir_, ": ", ec.message()));
    }
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(db_options, dir_, descriptors, &handles, &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("opening data directory ", dir_));
  db_.reset(raw);
  // Segment data files live in a directory of their own, durable before any file in it.
  {
    const rocksdb::IOOptions io;
    std::unique_ptr<rocksdb::FSDirectory> parent;
    rocksdb::IOStatus io_s = fs_->CreateDirIfMissing(SegmentFileDirectory(dir_), io, nullptr);
    if (io_s.ok()) io_s = fs_->NewDirectory(dir_, io, &parent, nullptr);
    if (io_s.ok()) io_s = parent->Fsync(io, nullptr);
    if (!io_s.ok()) {
      return FromRocks(io_s, absl::StrCat("creating ", SegmentFileDirectory(dir_)));
    }
  }

  // Hand segment handles to their topics once metadata is loaded; keep them here until then.
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i] == rocksdb::kDefaultColumnFamilyName) {
      default_cf_ = handles[i];
    } else if (names[i] == meta::kMetaColumnFamily) {
      meta_cf_ = handles[i];
    } else {
      uint32_t topic_id;
      uint64_t seq;
      if (meta::ParseSegmentName(names[i], &topic_id, &seq)) {
        pending_segments_.push_back({topic_id, seq, handles[i]});
      } else {
        db_->DestroyColumnFamilyHandle(handles[i]);  // unknown: left alone
      }
    }
  }
  return absl::OkStatus();
}

absl::Status LogStoreImpl::LoadMetadata() {
  rocksdb::ReadOptions ro;
  std::string value;
  rocksdb::Status s = db_->Get(ro, meta_cf_, meta::kFormatKey, &value);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, meta_cf_, meta::kFormatKey, meta::EncodeU64(meta::kFormatVersion));
    if (!s.ok()) return FromRocks(s, "writing the format version");
  } else if (!s.ok()) {
    return FromRocks(s, "reading the format version");
  } else {
    absl::optional<uint64_t> v = meta::DecodeU64(value);
    if (!v.has_value() || *v != meta::kFormatVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "data directory ", dir_, " was written in evlog storage format version ",
          v.has_value() ? absl::StrCat(*v) : "(unreadable)", "; this build reads version ",
          meta::kFormatVersion, ". Use a matching evlog release or a new data directory."));
    }
  }

  // Topics.
  absl::flat_hash_map<uint32_t, std::shared_ptr<TopicState>> by_id;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, meta_cf_));
  uint32_t max_id = 0;
  for (it->Seek(std::string(1, meta::kTopicPrefix));
       it->Valid() && it->key()[0] == meta::kTopicPrefix; it->Next()) {
    absl::optional<meta::TopicRecord> rec =
        meta::DecodeTopicRecord(absl::string_view(it->value().data(), it->value().size()));
    if (!rec.has_value()) {
      return absl::DataLossError(
          absl::StrCat("topic record ", it->key().ToString(), " in ", dir_, " is corrupt"));
    }
    auto t = std::make_shared<TopicState>();
    t->name = it->key().ToString().substr(1);
    t->id = rec->id;
    t->config = rec->config;
    t->config.quota = {};
    t->created_ms = rec->created_ms;
    absl::MutexLock l(&t->mu);
    t->quota = rec->config.quota;
    t->partitions.resize(rec->config.partitions);
    by_id[t->id] = t;
    max_id = std::max(max_id, t->id);
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading topics");
  s = db_->Get(ro, meta_cf_, meta::kNextTopicIdKey, &value);
  uint32_t next_id = max_id + 1;
  if (s.ok()) {
    absl::optional<uint64_t> v = meta::DecodeU64(value);
    if (v.has_value()) next_id = std::max<uint32_t>(next_id, static_cast<uint32_t>(*v));
  }

  // Segments: attach to topics; drop orphans left by a crash during topic deletion or
  // creation.
  for (const PendingSegment& ps : pending_segments_) {
    auto t = by_id.find(ps.topic_id);
    if (t == by_id.end()) {
      spdlog::info("dropping orphan segment {}", meta::SegmentName(ps.topic_id, ps.seq));
      db_->DropColumnFamily(ps.cf);
      db_->DestroyColumnFamilyHandle(ps.cf);
      continue;
    }
    int64_t created = NowMs();
    rocksdb::Status record =
        db_->Get(ro, meta_cf_, meta::SegmentRecordKey(ps.topic_id, ps.seq), &value);
    if (record.ok()) {
      created = static_cast<int64_t>(meta::DecodeU64(value).value_or(created));
    } else if (!record.IsNotFound()) {
      return FromRocks(record, "reading a segment record");
    } else if (ps.seq > 1 && ColumnFamilyIsEmpty(db_.get(), ps.cf) &&
               db_->Get(ro, meta_cf_, meta::SegmentDurableKey(ps.topic_id, ps.seq), &value)
                   .IsNotFound()) {
      // A spare no roll took (spare_segments.cc): a roll records a segment in the same write as
      // its first batches, and nothing else refers to it. Its data file goes as an orphan
      // (OpenSegmentFiles). If the drop fails, it stays a segment (empty), as before spares.
      rocksdb::Status dropped = db_->DropColumnFamily(ps.cf);
      if (dropped.ok()) {
        spdlog::info("dropped unused spare segment {}", meta::SegmentName(ps.topic_id, ps.seq));
        db_->DestroyColumnFamilyHandle(ps.cf);
        continue;
      }
      spdlog::warn("dropping unused spare segment {}: {}", meta::SegmentName(ps.topic_id, ps.seq),
                   dropped.ToString());
    }
    // The data file is attached by OpenSegmentFiles, once the index says what it must hold.
    auto seg = std::make_shared<Segment>(db_.get(), ps.cf, ps.topic_id, ps.seq, created, nullptr);
    absl::MutexLock l(&t->second->mu);
    t->second->segments[ps.seq] = std::move(seg);
  }
  pending_segments_.clear();

  // Per topic: start offsets and index entries; end offsets follow from them.
  for (auto& [id, t] : by_id) {
    absl::MutexLock l(&t->mu);
    if (t->segments.empty()) {
      // Crash between creating a topic's record and its first segment cannot happen (the
      // segment is created first), but be robust: give it one.
      absl::StatusOr<std::shared_ptr<Segment>> seg = CreateSegment(id, 1, NowMs());
      if (!seg.ok()) return seg.status();
      t->segments[1] = *seg;
    }
    const std::string o_prefix = meta::TopicScopedPrefix(meta::kStartOffsetPrefix, id);
    for (it->Seek(o_prefix); it->Valid() && it->key().starts_with(o_prefix); it->Next()) {
      const uint32_t p = DecodeBigEndian32(it->key().data() + 5);
      absl::optional<uint64_t> v =
          meta::DecodeU64(absl::string_view(it->value().data(), it->value().size()));
      if (!v.has_value() || p >= t->partitions.size()) {
        return absl::DataLossError(absl::StrCat("start offset record of topic ", t->name,
                                                " partition ", p, " is corrupt"));
      }
      t->partitions[p].start_offset = static_cast<int64_t>(*v);
    }
    const std::string x_prefix = meta::TopicScopedPrefix(meta::kIndexPrefix, id);
    for (it->Seek(x_prefix); it->Valid() && it->key().starts_with(x_prefix); it->Next()) {
      const uint64_t seq = DecodeBigEndian64(it->key().data() + 5);
      const uint32_t p = DecodeBigEndian32(it->key().data() + 13);
      absl::optional<meta::IndexEntry> e =
          meta::DecodeIndexEntry(absl::string_view(it->value().data(), it->value().size()));
      if (!e.has_value() || p >= t->partitions.size()) {
        return absl::DataLossError(
            absl::StrCat("segment index of topic ", t->name, " partition ", p, " is corrupt"));
      }
      auto seg = t->segments.find(seq);
      if (seg == t->segments.end()) continue;  // segment already dropped
      t->partitions[p].entries[seq] = *e;
      seg->second->bytes += e->bytes;
    }
    const std::string p_prefix = meta::TopicScopedPrefix(meta::kProducerStatePrefix, id);
    for (it->Seek(p_prefix); it->Valid() && it->key().starts_with(p_prefix); it->Next()) {
      const uint32_t p = DecodeBigEndian32(it->key().data() + 5);
      const int64_t producer = static_cast<int64_t>(DecodeBigEndian64(it->key().data() + 9));
      absl::optional<ProducerState> ps =
          DecodeProducerState(absl::string_view(it->value().data(), it->value().size()));
      if (!ps.has_value() || p >= t->partitions.size()) {
        return absl::DataLossError(
            absl::StrCat("producer state of topic ", t->name, " partition ", p, " is corrupt"));
      }
      t->partitions[p].producers[producer] = *std::move(ps);
    }
    for (PartitionState& p : t->partitions) {
      int64_t end = p.start_offset;
      for (const auto& [seq, e] : p.entries) end = std::max(end, e.end_offset);
      p.log_end_offset = end;
      p.high_watermark = end;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading metadata");
  it.reset();
  {
    std::vector<std::shared_ptr<TopicState>> topics;
    for (auto& [id, t] : by_id) topics.push_back(t);
    if (absl::Status fs = OpenSegmentFiles(topics); !fs.ok()) return fs;
  }

  if (db_->Get(ro, meta_cf_, meta::kNextProducerIdKey, &value).ok()) {
    absl::MutexLock pl(&producer_id_mu_);
    next_producer_id_ = static_cast<int64_t>(meta::DecodeU64(value).value_or(1));
  }
  absl::MutexLock l(&topics_mu_);
  next_topic_id_ = next_id;
  for (auto& [id, t] : by_id) topics_[t->name] = t;
  spdlog::info("opened {}: {} topics; RocksDB checksums with {}", dir_, topics_.size(),
               RocksDbUsesEvlogCrc32c() ? "evlog's CRC32C" : "RocksDB's own (portable) CRC32C");
  return absl::OkStatus();
}

absl::Status LogStoreImpl::Init() {
  absl::Status s = OpenDatabase();
  if (s.ok()) s = LoadMetadata();
  if (!s.ok()) return s;
  writer_ = std::thread([this] { WriterLoop(); });
  retention_ = std::thread([this] { RetentionLoop(); });
  spare_preparer_ = std::thread([this] { SparePreparerLoop(); });
  return absl::OkStatus();
}

LogStoreImpl::~LogStoreImpl() {
  {
    absl::MutexLock l(&cursors_mu_);
    if (!cursors_.empty()) {
      spdlog::error("{} read cursors outlive their log store (a caller's bug)", cursors_.size());
    }
  }
  {
    absl::MutexLock l(&threads_mu_);
    threads_stop_ = true;
  }
  if (retention_.joinable()) retention_.join();
  if (spare_preparer_.joinable()) spare_preparer_.join();
  {
    absl::MutexLock l(&queue_mu_);
    stopping_ = true;
  }
  if (writer_.joinable()) writer_.join();
  // The writer's own references to segments go before the database closes (they hold column
  // family handles), and so do requests for spares that the stopped preparer left.
  unsynced_segments_.clear();
  unrecorded_segments_.clear();
  {
    absl::MutexLock l(&threads_mu_);
    spare_requests_.clear();
  }
  {
    absl::MutexLock l(&topics_mu_);
    for (auto& [name, t] : topics_) {
      absl::MutexLock tl(&t->mu);
      t->closed = true;
      t->segments.clear();
      t->spare.reset();  // left on disk: the next open drops it
    }
    topics_.clear();
  }
  for (const PendingSegment& ps : pending_segments_) db_->DestroyColumnFamilyHandle(ps.cf);
  if (db_ != nullptr) {
    if (meta_cf_ != nullptr) db_->DestroyColumnFamilyHandle(meta_cf_);
    if (default_cf_ != nullptr) db_->DestroyColumnFamilyHandle(default_cf_);
    db_->Close();
  }
}

absl::StatusOr<std::shared_ptr<Segment>> LogStoreImpl::CreateSegment(uint32_t topic_id,
                                                                     uint64_t seq,
                                                                     int64_t created_ms) {
  // The data file first: a crash after it leaves an orphan file that the next open deletes.
  const std::string path = SegmentFilePath(dir_, topic_id, seq);
  absl::StatusOr<std::unique_ptr<SegmentFile>> file =
      SegmentFile::Create(fs_.get(), SegmentFileDirectory(dir_), path, topic_id, seq);
  if (!file.ok()) {
    fs_->DeleteFile(path, rocksdb::IOOptions(), nullptr).PermitUncheckedError();
    return absl::UnavailableError(file.status().message());
  }
  rocksdb::ColumnFamilyHandle* cf = nullptr;
  const std::string name = meta::SegmentName(topic_id, seq);
  rocksdb::Status s = db_->CreateColumnFamily(SegmentOptions(), name, &cf);
  if (!s.ok()) {
    file->reset();
    fs_->DeleteFile(path, rocksdb::IOOptions(), nullptr).PermitUncheckedError();
    // RocksDB may have created the column family before failing (e.g. writing its options
    // file): drop it, so that the name can be created again by the next attempt.
    if (cf != nullptr) {
      db_->DropColumnFamily(cf).PermitUncheckedError();
      db_->DestroyColumnFamilyHandle(cf).PermitUncheckedError();
    }
    absl::Status err = FromRocks(s, absl::StrCat("creating segment ", name));
    return absl::UnavailableError(err.message());
  }
  return std::make_shared<Segment>(db_.get(), cf, topic_id, seq, created_ms, *std::move(file));
}

void LogStoreImpl::DropSegment(const Segment& segment) {
  rocksdb::Status s = db_->DropColumnFamily(segment.cf);
  if (!s.ok()) spdlog::warn("dropping segment {}: {}", segment.cf->GetName(), s.ToString());
  const std::string path = segment.file != nullptr
                               ? segment.file->path()
                               : SegmentFilePath(dir_, segment.topic_id, segment.seq);
  rocksdb::IOStatus fs = fs_->DeleteFile(path, rocksdb::IOOptions(), nullptr);
  if (!fs.ok()) spdlog::warn("deleting segment file {}: {}", path, fs.ToString());
}

absl::Status LogStoreImpl::OpenSegmentFiles(
    const std::vector<std::shared_ptr<TopicState>>& topics) {
  absl::flat_hash_set<std::string> live;
  for (const std::shared_ptr<TopicState>& t : topics) {
    {
      absl::MutexLock l(&t->mu);
      for (auto& [seq, seg] : t->segments) {
        const std::string path = SegmentFilePath(dir_, t->id, seq);
        live.insert(path);
        absl::StatusOr<std::unique_ptr<SegmentFile>> file =
            SegmentFile::Open(fs_.get(), path, t->id, seq);
        const bool indexed =
            std::any_of(t->partitions.begin(), t->partitions.end(),
                        [&](const PartitionState& p) { return p.entries.contains(seq); });
        if (absl::IsNotFound(file.status()) && indexed) {
          return absl::DataLossError(absl::StrCat(
              "segment file ", path, " of topic '", t->name,
              "' is missing, but the segment index lists batches in it; restore the file "
              "from a backup, or delete the topic"));
        }
        if (!file.ok() && !indexed &&
            (absl::IsNotFound(file.status()) || absl::IsDataLoss(file.status()))) {
          // A segment without batches whose file was never finished (a crash while creating
          // it): make it again.
          spdlog::info("recreating the data file of empty segment {}: {}", path,
                       file.status().ToString());
          fs_->DeleteFile(path, rocksdb::IOOptions(), nullptr).PermitUncheckedError();
          file = SegmentFile::Create(fs_.get(), SegmentFileDirectory(dir_), path, t->id, seq);
          if (!file.ok()) {
            fs_->DeleteFile(path, rocksdb::IOOptions(), nullptr).PermitUncheckedError();
          }
        }
        if (!file.ok()) return file.status();
        seg->file = *std::move(file);
      }
    }
    if (absl::Status s = RecoverUnsyncedTails(t); !s.ok()) return s;
    // What the last process wrote but did not fsync may still be in the page cache (it
    // crashed, or was killed) and recovery kept it: fsync it now and record it as durable,
    // before anything is built on it. Otherwise a later power cut could take it while newer,
    // synced data of the same partitions survives in another segment.
    rocksdb::WriteBatch wb;
    std::vector<std::shared_ptr<Segment>> segments;
    {
      absl::ReaderMutexLock l(&t->mu);
      for (const auto& [seq, seg] : t->segments) segments.push_back(seg);
    }
    for (const std::shared_ptr<Segment>& seg : segments) {
      if (seg->file->size() <= DurableLength(*seg)) continue;
      if (absl::Status s = seg->file->SyncAllWritten(); !s.ok()) return s;
      wb.Put(meta_cf_, meta::SegmentDurableKey(t->id, seg->seq),
             meta::EncodeU64(seg->file->synced_size()));
    }
    if (wb.Count() > 0) {
      rocksdb::WriteOptions wo;
      wo.sync = true;
      if (rocksdb::Status s = db_->Write(wo, &wb); !s.ok()) {
        return FromRocks(s, "recording segment files' durable lengths");
      }
    }
  }
  // Files of segments that are gone: a crash between dropping a segment and deleting its file,
  // or between creating a file and its segment.
  std::vector<std::string> children;
  const std::string directory = SegmentFileDirectory(dir_);
  rocksdb::IOStatus ls = fs_->GetChildren(directory, rocksdb::IOOptions(), &children, nullptr);
  if (!ls.ok()) return FromRocks(ls, absl::StrCat("listing ", directory));
  for (const std::string& name : children) {
    const std::string path = absl::StrCat(directory, "/", name);
    if (!absl::EndsWith(name, segment_format::kFileSuffix) || live.contains(path)) continue;
    spdlog::info("deleting orphan segment file {}", path);
    rocksdb::IOStatus ds = fs_->DeleteFile(path, rocksdb::IOOptions(), nullptr);
    if (!ds.ok()) spdlog::warn("deleting orphan segment file {}: {}", path, ds.ToString());
  }
  return absl::OkStatus();
}

uint64_t LogStoreImpl::DurableLength(const Segment& segment) const {
  std::string value;
  if (!db_->Get(rocksdb::ReadOptions(), meta_cf_,
                meta::SegmentDurableKey(segment.topic_id, segment.seq), &value)
           .ok()) {
    return 0;
  }
  return meta::DecodeU64(value).value_or(0);
}

absl::Status LogStoreImpl::RecoverUnsyncedTails(const std::shared_ptr<TopicState>& t) {
  // Per segment, the partitions with batches in it.
  std::vector<std::pair<std::shared_ptr<Segment>, std::vector<uint32_t>>> work;
  std::vector<int64_t> start_offsets;
  {
    absl::ReaderMutexLock l(&t->mu);
    for (const PartitionState& p : t->partitions) start_offsets.push_back(p.start_offset);
    for (const auto& [seq, seg] : t->segments) {
      std::vector<uint32_t> partitions;
      for (uint32_t p = 0; p < t->partitions.size(); ++p) {
        if (t->partitions[p].entries.contains(seq)) partitions.push_back(p);
      }
      if (!partitions.empty()) work.emplace_back(seg, std::move(partitions));
    }
  }
  // Per partition, the first batch whose frame is not intact (if any).
  std::map<uint32_t, int64_t> truncate_at;
  for (const auto& [seg, partitions] : work) {
    const uint64_t durable = DurableLength(*seg);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), seg->cf));
    std::string scratch;
    for (uint32_t p : partitions) {
      if (truncate_at.contains(p)) continue;  // an earlier segment already ends it
      // Walk back from the partition's last batch over the frames past the durable length.
      std::vector<std::pair<int64_t, BatchLocation>> suspects;
      for (it->SeekForPrev(meta::BatchKey(p, std::numeric_limits<int64_t>::max())); it->Valid();
           it->Prev()) {
        uint32_t key_partition = 0;
        int64_t base = 0;
        meta::ParseBatchKey(absl::string_view(it->key().data(), it->key().size()), &key_partition,
                            &base);
        if (key_partition != p) break;
        std::optional<BatchLocation> location =
            DecodeBatchLocation(absl::string_view(it->value().data(), it->value().size()));
        if (location.has_value() &&
            location->position + segment_format::kFrameHeaderSize + location->batch_length <=
                durable) {
          break;
        }
        suspects.emplace_back(base, location.value_or(BatchLocation{}));
      }
      if (!it->status().ok()) return FromRocks(it->status(), "checking segment tails");
      for (auto s = suspects.rbegin(); s != suspects.rend(); ++s) {
        // Below the start offset nothing is read any more (start offsets are batch bounds).
        if (s->first < start_offsets[p]) continue;
        absl::StatusOr<absl::string_view> batch =
            seg->file->ReadBatch(s->second, p, s->first, &scratch);
        // Only a missing or damaged frame means it did not reach the disk; an I/O error is
        // not a reason to drop data.
        if (!batch.ok() && !absl::IsDataLoss(batch.status())) return batch.status();
        absl::Status bad = batch.status();
        if (bad.ok()) bad = VerifyBatch(*batch).status();
        if (bad.ok()) continue;
        spdlog::warn(
            "topic '{}' partition {}: the batches from offset {} on did not reach the disk "
            "before the last crash or power cut (they were not acknowledged under "
            "fsync=always; under fsync=interval they may have been); truncating there: {}",
            t->name, p, s->first, bad.ToString());
        truncate_at[p] = s->first;
        break;
      }
    }
  }
  for (const auto& [p, offset] : truncate_at) {
    if (absl::Status s = DoTruncate(t, static_cast<int32_t>(p), offset); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("topic '", t->name, "' partition ", p,
                                                 ": cannot drop its damaged tail from offset ",
                                                 offset, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<TopicState>> LogStoreImpl::FindTopic(absl::string_view name) const {
  absl::ReaderMutexLock l(&topics_mu_);
  auto it = topics_.find(name);
  if (it == topics_.end()) {
    return absl::NotFoundError(absl::StrCat("topic '", name, "' does not exist"));
  }
  return it->second;
}

absl::Status LogStoreImpl::CreateTopic(absl::string_view name, const TopicConfig& config) {
  if (!IsValidTopicName(name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid topic name '", name, "': use 1 to 249 characters from [A-Za-z0-9._-]"));
  }
  if (config.partitions < 1 || config.partitions > kMaxPartitions) {
    return absl::InvalidArgumentError(absl::StrCat("invalid partition count ", config.partitions,
                                                   ": allowed 1 to ", kMaxPartitions));
  }
  if (config.retention_ms < -1 || config.retention_bytes < -1) {
    return absl::InvalidArgumentError("invalid retention: use -1 for unlimited, or a value >= 0");
  }
  if (config.quota.bytes_per_sec < 0 || config.quota.records_per_sec < 0) {
    return absl::InvalidArgumentError("invalid quota: rates must be >= 0 (0 means unlimited)");
  }
  absl::MutexLock admin(&admin_mu_);
  uint32_t id;
  {
    absl::MutexLock l(&topics_mu_);
    if (topics_.contains(name)) {
      return absl::AlreadyExistsError(absl::StrCat("topic '", name, "' already exists"));
    }
    id = next_topic_id_;
  }
  const int64_t now = NowMs();
  // The segment first: a crash after it but before the topic record leaves an orphan segment
  // that the next Open drops.
  absl::StatusOr<std::shared_ptr<Segment>> seg = CreateSegment(id, 1, now);
  if (!seg.ok()) return seg.status();

  meta::TopicRecord rec{.id = id, .config = config, .created_ms = now};
  rocksdb::WriteBatch wb;
  wb.Put(meta_cf_, meta::TopicKey(name), meta::EncodeTopicRecord(rec));
  wb.Put(meta_cf_, meta::kNextTopicIdKey, meta::EncodeU64(id + 1));
  wb.Put(meta_cf_, meta::SegmentRecordKey(id, 1), meta::EncodeU64(static_cast<uint64_t>(now)));
  for (int32_t p = 0; p < config.partitions; ++p) {
    wb.Put(meta_cf_, meta::StartOffsetKey(id, p), meta::EncodeU64(0));
    wb.Put(meta_cf_, meta::EpochKey(id, p, 0), meta::EncodeU64(0));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db_->Write(wo, &wb);
  if (!s.ok()) {
    DropSegment(**seg);
    return FromRocks(s, absl::StrCat("creating topic ", name));
  }

  auto t = std::make_shared<TopicState>();
  t->name = std::string(name);
  t->id = id;
  t->config = config;
  t->config.quota = {};
  t->created_ms = now;
  {
    absl::MutexLock tl(&t->mu);
    t->quota = config.quota;
    t->partitions.resize(config.partitions);
    t->segments[1] = *seg;
  }
  absl::MutexLock l(&topics_mu_);
  next_topic_id_ = id + 1;
  topics_[t->name] = t;
  return absl::OkStatus();
}

absl::Status LogStoreImpl::DeleteTopic(absl::string_view name) {
  absl::MutexLock admin(&admin_mu_);
  absl::StatusOr<std::shared_ptr<TopicState>> t = FindTopic(name);
  if (!t.ok()) return t.status();
  std::shared_ptr<TopicState> topic = *t;
  absl::Status s = RunControl([this, topic] { return DoDeleteTopic(topic); });
  if (!s.ok()) return s;
  absl::MutexLock l(&topics_mu_);
  topics_.erase(topic->name);
  return absl::OkStatus();
}

absl::StatusOr<ProducerInfo> LogStoreImpl::InitProducer() {
  absl::MutexLock l(&producer_id_mu_);
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = db_->Put(wo, meta_cf_, meta::kNextProducerIdKey,
                               meta::EncodeU64(static_cast<uint64_t>(next_producer_id_ + 1)));
  if (!s.ok()) return FromRocks(s, "allocating a producer id");
  return ProducerInfo{.producer_id = next_producer_id_++, .producer_epoch = 0, .base_sequence = 0};
}

std::vector<std::string> LogStoreImpl::ListTopics() const {
  std::vector<std::string> names;
  {
    absl::ReaderMutexLock l(&topics_mu_);
    for (const auto& [name, t] : topics_) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

absl::StatusOr<TopicInfo> LogStoreImpl::DescribeTopic(absl::string_view name) const {
  absl::StatusOr<std::shared_ptr<TopicState>> t = FindTopic(name);
  if (!t.ok()) return t.status();
  const TopicState& topic = **t;
  TopicInfo info;
  info.name = topic.name;
  info.config = topic.config;
  info.created_ms = topic.created_ms;
  absl::ReaderMutexLock l(&topic.mu);
  info.config.quota = topic.quota;
  for (size_t i = 0; i < topic.partitions.size(); ++i) {
    const PartitionState& p = topic.partitions[i];
    PartitionInfo pi;
    pi.partition = static_cast<int32_t>(i);
    pi.start_offset = p.start_offset;
    pi.end_offset = p.high_watermark;
    for (const auto& [seq, e] : p.entries) {
      if (e.end_offset > p.start_offset) pi.bytes += e.bytes;
    }
    info.partitions.push_back(pi);
  }
  return info;
}

namespace {

absl::Status CheckPartition(const TopicState& topic, int32_t partition) {
  if (partition < 0 || partition >= topic.config.partitions) {
    return absl::OutOfRangeError(absl::StrCat("topic '", topic.name, "' has no partition ",
                                              partition, ": valid partitions are 0 to ",
                                              topic.config.partitions - 1));
  }
  return absl::OkStatus();
}

}  // namespace

void LogStoreImpl::EnqueueAppend(std::shared_ptr<TopicState> topic, int32_t partition,
                                 std::string batch, const BatchHeader& header, int64_t now_ms,
                                 AppendCallback done) {
  WriteRequest req;
  req.topic = std::move(topic);
  req.partition = partition;
  req.batch = std::move(batch);
  req.record_count = header.record_count;
  req.max_timestamp_ms = header.max_timestamp_ms;
  req.append_time_ms = now_ms;
  req.producer = header.producer;
  req.done = std::move(done);
  Enqueue(std::move(req));
}

void LogStoreImpl::AppendAsync(absl::string_view topic_name, int32_t partition,
                               std::vector<Record> records, const ProducerInfo& producer,
                               AppendCallback done) {
  absl::StatusOr<std::shared_ptr<TopicState>> topic = FindTopic(topic_name);
  if (!topic.ok()) return done(topic.status());
  if (absl::Status s = CheckPartition(**topic, partition); !s.ok()) return done(s);
  if (records.empty()) {
    return done(absl::InvalidArgumentError("a batch must hold at least one record"));
  }
  if (producer.producer_id >= 0 && (producer.producer_epoch < 0 || producer.base_sequence < 0)) {
    return done(absl::InvalidArgumentError(
        "an idempotent batch needs a producer epoch >= 0 and a base sequence >= 0"));
  }
  const int64_t now = NowMs();
  BatchHeader header;
  header.record_count = static_cast<int32_t>(records.size());
  header.max_timestamp_ms = -1;
  header.producer = producer;
  for (Record& r : records) {
    if (r.timestamp_ms < 0) r.timestamp_ms = now;
    header.max_timestamp_ms = std::max(header.max_timestamp_ms, r.timestamp_ms);
  }
  // Encoded here, then the same path as a raw batch: the encoder's output is valid by
  // construction, so it skips ValidateBatch.
  std::string batch = EncodeBatch(records, producer, /*leader_epoch=*/0);
  if (batch.size() > batch_format::kMaxBatchBytes) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("batch of ", batch.size(), " bytes exceeds the limit of ",
                     batch_format::kMaxBatchBytes, " bytes; send smaller batches")));
  }
  EnqueueAppend(*std::move(topic), partition, std::move(batch), header, now, std::move(done));
}

void LogStoreImpl::AppendRawAsync(absl::string_view topic_name, int32_t partition,
                                  ValidatedBatch batch, AppendCallback done) {
  absl::StatusOr<std::shared_ptr<TopicState>> topic = FindTopic(topic_name);
  if (!topic.ok()) return done(topic.status());
  if (absl::Status s = CheckPartition(**topic, partition); !s.ok()) return done(s);
  const BatchHeader header = batch.header();
  EnqueueAppend(*std::move(topic), partition, std::move(batch).TakeBytes(), header, NowMs(),
                std::move(done));
}

absl::StatusOr<AppendResult> LogStoreImpl::Append(absl::string_view topic, int32_t partition,
                                                  std::vector<Record> records,
                                                  const ProducerInfo& producer) {
  absl::Notification done;
  absl::StatusOr<AppendResult> result;
  AppendAsync(topic, partition, std::move(records), producer, [&](absl::StatusOr<AppendResult> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::StatusOr<AppendResult> LogStoreImpl::AppendRaw(absl::string_view topic_name,
                                                     int32_t partition, std::string batch) {
  if (batch.size() > batch_format::kMaxBatchBytes) {
    return absl::InvalidArgumentError("raw batch exceeds the 64 MiB limit");
  }
  // The header and CRC first, so that corruption is DATA_LOSS as documented; then the
  // records' framing (INVALID_ARGUMENT). This follower path is not hot: checking the CRC twice
  // keeps ValidateBatch the one place that knows the framing rules.
  if (absl::StatusOr<BatchHeader> header = VerifyBatch(batch); !header.ok()) {
    return header.status();
  }
  absl::StatusOr<ValidatedBatch> valid = ValidateBatch(std::move(batch), BatchLimits{});
  if (!valid.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw batch is malformed: ", valid.status().message()));
  }
  absl::Notification done;
  absl::StatusOr<AppendResult> result;
  AppendRawAsync(topic_name, partition, *std::move(valid), [&](absl::StatusOr<AppendResult> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

absl::StatusOr<LogStoreImpl::PartitionSnapshot> LogStoreImpl::Snapshot(absl::string_view name,
                                                                       int32_t partition) const {
  absl::StatusOr<std::shared_ptr<TopicState>> t = FindTopic(name);
  if (!t.ok()) return t.status();
  const TopicState& topic = **t;
  if (absl::Status s = CheckPartition(topic, partition); !s.ok()) return s;
  PartitionSnapshot snap;
  absl::ReaderMutexLock l(&topic.mu);
  if (topic.deleted) return absl::NotFoundError(absl::StrCat("topic '", name, "' was deleted"));
  const PartitionState& p = topic.partitions[partition];
  snap.start_offset = p.start_offset;
  snap.high_watermark = p.high_watermark;
  snap.truncations = p.truncations;
  for (const auto& [seq, e] : p.entries) {
    if (e.end_offset <= p.start_offset) continue;
    auto seg = topic.segments.find(seq);
    if (seg != topic.segments.end()) snap.segments.emplace_back(seg->second, e);
  }
  return snap;
}

// How long a ReadCursor may keep its iterator. An iterator pins the memtables and table files
// it started on; a second bounds what a reader holds after the writer (or retention) has moved
// on, while a catch-up read still seeks only about once a second per partition.
constexpr absl::Duration kMaxCursorAge = absl::Seconds(1);

// Declaration order matters: `it` goes first (reverse order), before the bound and the column
// family it reads.
struct ReadCursor::State {
  std::shared_ptr<Segment> segment;  // keeps the column family handle alive for `it`
  uint32_t partition = 0;
  std::string upper;  // iterate_upper_bound: the partition's first key past its last
  rocksdb::Slice upper_slice;
  // Every offset below this was readable before `it` was created, so `it` sees it.
  int64_t visible_end = 0;
  uint64_t truncations = 0;  // the partition's truncations when `it` was created
  absl::Time created;
  std::unique_ptr<rocksdb::Iterator> it;  // at the last batch visited, or at the next one
};

ReadCursor::ReadCursor() = default;

ReadCursor::~ReadCursor() {
  if (store_ != nullptr) store_->ForgetCursor(this);
}

void ReadCursor::Reset() {
  absl::MutexLock l(&mu_);
  state_.reset();
}

bool ReadCursor::holds_state() {
  absl::MutexLock l(&mu_);
  return state_ != nullptr;
}

void LogStoreImpl::ForgetCursor(ReadCursor* cursor) {
  absl::MutexLock l(&cursors_mu_);
  cursors_.erase(cursor);
}

ReadCursor* LogStoreImpl::AdoptCursor(ReadCursor* cursor) const {
  if (cursor == nullptr || cursor->store_ == this) return cursor;
  if (cursor->store_ != nullptr) return nullptr;  // another store's: its segments are not ours
  // The cursor's own thread is the only one that reads or sets store_.
  cursor->store_ = const_cast<LogStoreImpl*>(this);
  absl::MutexLock l(&cursors_mu_);
  cursors_.insert(cursor);
  return cursor;
}

void LogStoreImpl::ReleaseStaleCursors() {
  const absl::Time now = absl::Now();
  // Declared before the lock, so destroyed after it is released: letting go of an iterator
  // may free memtables or delete files, while reads registering or forgetting their cursors
  // wait for cursors_mu_.
  std::vector<std::unique_ptr<ReadCursor::State>> stale;
  absl::MutexLock l(&cursors_mu_);
  for (ReadCursor* cursor : cursors_) {
    // A cursor in a read is skipped: that read checks its age itself.
    if (!cursor->mu_.TryLock()) continue;
    if (cursor->state_ != nullptr && now - cursor->state_->created > kMaxCursorAge) {
      stale.push_back(std::move(cursor->state_));
    }
    cursor->mu_.Unlock();
  }
}

namespace {

// The partition and base offset of the batch key `it` is at (it must be valid).
void KeyAt(const rocksdb::Iterator& it, uint32_t* partition, int64_t* base) {
  meta::ParseBatchKey(absl::string_view(it.key().data(), it.key().size()), partition, base);
}

// A fresh iterator over `partition` of `segment`, seeing at least the offsets below
// `visible_end`, positioned at the batch holding `target` (or the first one after it).
std::unique_ptr<ReadCursor::State> NewScan(rocksdb::DB* db, std::shared_ptr<Segment> segment,
                                           uint32_t partition, int64_t visible_end,
                                           uint64_t truncations, int64_t target) {
  auto st = std::make_unique<ReadCursor::State>();
  st->segment = std::move(segment);
  st->partition = partition;
  st->truncations = truncations;
  st->upper = meta::BatchKey(partition + 1, 0);
  st->upper_slice = rocksdb::Slice(st->upper);
  st->visible_end = visible_end;
  st->created = absl::Now();
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &st->upper_slice;
  st->it.reset(db->NewIterator(ro, st->segment->cf));
  rocksdb::Iterator* it = st->it.get();
  const std::string start = meta::BatchKey(partition, target);
  uint32_t key_partition = 0;
  int64_t base = 0;
  // Readers mostly start at a batch's first offset (they continue where the last read ended):
  // a forward seek finds it. Only a start inside a batch needs the costlier backward seek.
  it->Seek(start);
  if (it->Valid()) {
    KeyAt(*it, &key_partition, &base);
    if (key_partition == partition && base == target) return st;
  }
  it->SeekForPrev(start);
  if (it->Valid()) {
    KeyAt(*it, &key_partition, &base);
  }
  if (!it->Valid() || key_partition != partition) it->Seek(start);
  return st;
}

// Whether `st` can go on reading `partition` of `segment` at `offset`: it stands at the batch
// starting there (or at the one before, which the last read visited), young enough, no
// truncation happened since it began, and `offset` is below what it sees.
bool CanContinue(ReadCursor::State* st, const std::shared_ptr<Segment>& segment, uint32_t partition,
                 uint64_t truncations, int64_t offset) {
  if (st == nullptr || st->segment != segment || st->partition != partition) return false;
  if (st->truncations != truncations) return false;  // offsets it saw may hold other data now
  if (offset >= st->visible_end || absl::Now() - st->created > kMaxCursorAge) return false;
  rocksdb::Iterator* it = st->it.get();
  uint32_t key_partition = 0;
  int64_t base = 0;
  for (int step = 0; step < 2 && it->Valid(); ++step) {
    KeyAt(*it, &key_partition, &base);
    if (key_partition != partition || base > offset) return false;
    if (base == offset) return true;
    it->Next();
  }
  return false;
}

}  // namespace

template <typename Visit>
absl::Status LogStoreImpl::ScanBatches(const PartitionSnapshot& snap, uint32_t partition,
                                       int64_t offset, int64_t end, Visit visit,
                                       std::unique_ptr<ReadCursor::State>* cursor) const {
  std::string scratch;  // the batch being visited
  for (const auto& [seg, entry] : snap.segments) {
    if (entry.end_offset <= offset) continue;
    if (entry.first_offset >= end) break;
    std::unique_ptr<ReadCursor::State> local;
    ReadCursor::State* st = cursor != nullptr ? cursor->get() : nullptr;
    // A continued walk cannot see what was written after it began: it ends there, and the
    // caller's next call starts a new one.
    int64_t stop = end;
    if (CanContinue(st, seg, partition, snap.truncations, offset)) {
      stop = std::min(end, st->visible_end);
    } else {
      local = NewScan(db_.get(), seg, partition, snap.high_watermark, snap.truncations,
                      std::max(offset, entry.first_offset));
      st = local.get();
      if (cursor != nullptr) *cursor = std::move(local);
    }
    rocksdb::Iterator* it = st->it.get();
    uint32_t key_partition = 0;
    int64_t base = 0;
    for (; it->Valid(); it->Next()) {
      KeyAt(*it, &key_partition, &base);
      if (key_partition != partition || base >= stop) return absl::OkStatus();
      std::optional<BatchLocation> location =
          DecodeBatchLocation(absl::string_view(it->value().data(), it->value().size()));
      absl::StatusOr<absl::string_view> batch =
          location.has_value() ? seg->file->ReadBatch(*location, partition, base, &scratch)
                               : absl::DataLossError(absl::StrCat(
                                     "segment ", seg->cf->GetName(), " partition ", partition,
                                     " offset ", base, ": the batch's location is damaged"));
      if (!batch.ok()) {
        if (cursor != nullptr) cursor->reset();
        return batch.status();
      }
      if (!visit(base, *batch)) return absl::OkStatus();
    }
    if (!it->status().ok()) {
      if (cursor != nullptr) cursor->reset();
      return FromRocks(it->status(), "reading a segment");
    }
    if (stop < end) return absl::OkStatus();
    offset = std::max(offset, entry.end_offset);
  }
  return absl::OkStatus();
}

namespace {

// The header of the stored batch at `base` of a partition once its CRC and framing check out;
// DATA_LOSS naming the topic, partition and offset otherwise (stored bytes went bad).
absl::StatusOr<BatchHeader> VerifyStoredBatch(absl::string_view topic, int32_t partition,
                                              int64_t base, absl::string_view batch) {
  absl::StatusOr<BatchHeader> h = VerifyBatch(batch);
  if (h.ok()) return h;
  return absl::DataLossError(absl::StrCat("topic '", topic, "' partition ", partition,
                                          " batch at offset ", base, ": ", h.status().message()));
}

absl::Status RangeError(absl::string_view topic, int32_t partition, int64_t offset, int64_t start,
                        int64_t end) {
  return absl::OutOfRangeError(absl::StrCat("offset ", offset, " is outside the readable range [",
                                            start, ", ", end, "] of topic '", topic, "' partition ",
                                            partition));
}

}  // namespace

absl::StatusOr<ReadResult> LogStoreImpl::Read(absl::string_view topic, int32_t partition,
                                              int64_t offset, const ReadLimits& limits) const {
  absl::StatusOr<PartitionSnapshot> snap = Snapshot(topic, partition);
  if (!snap.ok()) return snap.status();
  if (offset < snap->start_offset || offset > snap->high_watermark) {
    return RangeError(topic, partition, offset, snap->start_offset, snap->high_watermark);
  }
  ReadResult result;
  result.start_offset = snap->start_offset;
  result.high_watermark = snap->high_watermark;
  result.next_offset = offset;
  int64_t end = snap->high_watermark;
  if (limits.end_offset >= 0) end = std::min(end, limits.end_offset);
  if (offset >= end) return result;

  uint64_t bytes = 0;
  absl::Status error;
  absl::Status s =
      ScanBatches(*snap, partition, offset, end, [&](int64_t base, absl::string_view batch) {
        absl::StatusOr<BatchHeader> h = VerifyStoredBatch(topic, partition, base, batch);
        if (!h.ok()) {
          error = h.status();
          return false;
        }
        const int64_t want = std::min<int64_t>(limits.max_records - result.records.size(),
                                               end - std::max(base, result.next_offset));
        absl::Status d = DecodeRecords(batch, base, result.next_offset, want, &result.records);
        if (!d.ok()) {
          error = absl::DataLossError(absl::StrCat("topic '", topic, "' partition ", partition,
                                                   " batch at offset ", base, ": ", d.message()));
          return false;
        }
        if (!result.records.empty()) result.next_offset = result.records.back().offset + 1;
        bytes += batch.size();
        return bytes < limits.max_bytes &&
               static_cast<int64_t>(result.records.size()) < limits.max_records &&
               result.next_offset < end;
      });
  if (!error.ok()) return error;
  if (!s.ok()) return s;
  if (result.next_offset < end && result.records.empty()) {
    // The data below the high watermark must exist; its absence is corruption.
    return absl::DataLossError(absl::StrCat("topic '", topic, "' partition ", partition,
                                            " has no batch holding offset ", offset));
  }
  return result;
}

absl::StatusOr<std::vector<RawBatch>> LogStoreImpl::ReadRaw(absl::string_view topic,
                                                            int32_t partition, int64_t offset,
                                                            uint64_t max_bytes) const {
  absl::StatusOr<PartitionSnapshot> snap = Snapshot(topic, partition);
  if (!snap.ok()) return snap.status();
  if (offset < snap->start_offset || offset > snap->high_watermark) {
    return RangeError(topic, partition, offset, snap->start_offset, snap->high_watermark);
  }
  std::vector<RawBatch> out;
  uint64_t bytes = 0;
  absl::Status s = ScanBatches(*snap, partition, offset, snap->high_watermark,
                               [&](int64_t base, absl::string_view batch) {
                                 out.push_back({base, std::string(batch)});
                                 bytes += batch.size();
                                 return bytes < max_bytes;
                               });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<RawReadResult> LogStoreImpl::ReadBatches(absl::string_view topic, int32_t partition,
                                                        int64_t offset, const ReadLimits& limits,
                                                        ReadCursor* cursor) const {
  absl::StatusOr<PartitionSnapshot> snap = Snapshot(topic, partition);
  if (!snap.ok()) return snap.status();
  if (offset < snap->start_offset || offset > snap->high_watermark) {
    return RangeError(topic, partition, offset, snap->start_offset, snap->high_watermark);
  }
  RawReadResult result;
  result.start_offset = snap->start_offset;
  result.high_watermark = snap->high_watermark;
  int64_t end = snap->high_watermark;
  if (limits.end_offset >= 0) end = std::min(end, limits.end_offset);
  if (offset >= end) return result;

  int64_t next = offset;  // one past the last offset the batches so far hold
  int64_t records = 0;    // records at or after `offset` in them
  uint64_t bytes = 0;
  cursor = AdoptCursor(cursor);
  std::optional<absl::MutexLock> cursor_lock;
  if (cursor != nullptr) cursor_lock.emplace(&cursor->mu_);

  absl::Status error;
  absl::Status s = ScanBatches(
      *snap, partition, offset, end,
      [&](int64_t base, absl::string_view batch) {
        absl::StatusOr<BatchHeader> h = VerifyStoredBatch(topic, partition, base, batch);
        if (!h.ok()) {
          error = h.status();
          return false;
        }
        const int64_t batch_end = base + h->record_count;
        if (batch_end <= next) return true;  // wholly below `offset`
        if (base > next) return false;       // a gap: reported below
        records += batch_end - next;
        next = batch_end;
        bytes += batch.size();
        result.batches.push_back({base, std::string(batch)});
        return bytes < limits.max_bytes && records < limits.max_records && next < end;
      },
      cursor != nullptr ? &cursor->state_ : nullptr);
  cursor_lock.reset();
  // The intact batches before a bad one are returned; the next call starts at the bad one
  // and reports it.
  if (!error.ok() && result.batches.empty()) return error;
  if (!s.ok() && result.batches.empty()) return s;
  if (result.batches.empty()) {
    // The data below the high watermark must exist; its absence (or a gap, found when the
    // next call starts at it) is corruption.
    return absl::DataLossError(absl::StrCat("topic '", topic, "' partition ", partition,
                                            " has no batch holding offset ", next));
  }
  return result;
}

absl::StatusOr<bool> LogStoreImpl::WaitForData(absl::string_view name, int32_t partition,
                                               int64_t offset, absl::Time deadline) const {
  absl::StatusOr<std::shared_ptr<TopicState>> t = FindTopic(name);
  if (!t.ok()) return t.status();
  const TopicState& topic = **t;
  if (absl::Status s = CheckPartition(topic, partition); !s.ok()) return s;
  struct Arg {
    const TopicState* topic;
    int32_t partition;
    int64_t offset;
  } arg{&topic, partition, offset};
  auto ready = [](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return a->topic->closed || a->topic->deleted ||
           a->topic->partitions[a->partition].high_watermark > a->offset;
  };
  topic.mu.LockWhenWithDeadline(absl::Condition(+ready, &arg), deadline);
  const bool has_data = topic.partitions[partition].high_watermark > offset && !topic.deleted;
  topic.mu.Unlock();
  return has_data;
}

absl::StatusOr<int64_t> LogStoreImpl::OffsetForTimestamp(absl::string_view topic, int32_t partition,
                                                         int64_t timestamp_ms) const {
  absl::StatusOr<PartitionSnapshot> snap = Snapshot(topic, partition);
  if (!snap.ok()) return snap.status();
  // Skip segments whose largest timestamp is below T, then scan batches by their header.
  PartitionSnapshot candidates;
  for (const auto& seg : snap->segments) {
    if (seg.second.max_timestamp_ms >= timestamp_ms) candidates.segments.push_back(seg);
  }
  int64_t found = snap->high_watermark;
  absl::Status error;
  absl::Status s = ScanBatches(candidates, partition, snap->start_offset, snap->high_watermark,
                               [&](int64_t base, absl::string_view batch) {
                                 absl::StatusOr<BatchHeader> h = VerifyBatch(batch);
                                 if (!h.ok()) {
                                   error = h.status();
                                   return false;
                                 }
                                 if (h->max_timestamp_ms < timestamp_ms) return true;
                                 absl::StatusOr<int64_t> at =
                                     FindTimestamp(batch, base, timestamp_ms);
                                 if (!at.ok()) {
                                   error = at.status();
                                   return false;
                                 }
                                 if (*at < 0) return true;
                                 found = std::max(*at, snap->start_offset);
                                 return false;
                               });
  if (!error.ok()) return error;
  if (!s.ok()) return s;
  return found;
}

absl::Status LogStoreImpl::TruncateTo(absl::string_view name, int32_t partition,
                                      int64_t new_end_offset) {
  absl::StatusOr<std::shared_ptr<TopicState>> t = FindTopic(name);
  if (!t.ok()) return t.status();
  if (absl::Status s = CheckPartition(**t, partition); !s.ok()) return s;
  std::shared_ptr<TopicState> topic = *t;
  return RunControl([this, topic, partition, new_end_offset] {
    return DoTruncate(topic, partition, new_end_offset);
  });
}

absl::Status LogStoreImpl::RunRetention() {
  std::vector<std::shared_ptr<TopicState>> topics;
  {
    absl::ReaderMutexLock l(&topics_mu_);
    for (const auto& [name, t] : topics_) topics.push_back(t);
  }
  for (const std::shared_ptr<TopicState>& t : topics) {
    absl::Status s = RunControl([this, t] { return ApplyRetention(t); });
    if (!s.ok() && !absl::IsNotFound(s)) return s;
  }
  return absl::OkStatus();
}

absl::Status LogStoreImpl::RollSegments() {
  std::vector<std::shared_ptr<TopicState>> topics;
  {
    absl::ReaderMutexLock l(&topics_mu_);
    for (const auto& [name, t] : topics_) topics.push_back(t);
  }
  for (const std::shared_ptr<TopicState>& t : topics) {
    absl::Status s = RunControl([this, t]() -> absl::Status {
      {
        absl::ReaderMutexLock l(&t->mu);
        if (t->deleted || t->segments.rbegin()->second->bytes == 0) return absl::OkStatus();
      }
      rocksdb::WriteBatch wb;
      absl::Status r = RollSegment(t.get(), &wb);
      if (!r.ok()) return r;
      rocksdb::WriteOptions wo;
      wo.sync = true;
      return FromRocks(db_->Write(wo, &wb), "recording a new segment");
    });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status LogStoreImpl::Sync() {
  return RunControl([this] { return SyncOnWriter(); });
}

StoreStats LogStoreImpl::Stats() const {
  StoreStats st;
  st.appends = stat_appends_;
  st.records = stat_records_;
  st.bytes = stat_bytes_;
  st.write_groups = stat_groups_;
  st.fsyncs = stat_fsyncs_;
  st.segments_rolled = stat_rolled_;
  st.segments_dropped = stat_dropped_;
  st.spares_made = stat_spares_made_;
  st.spares_used = stat_spares_used_;
  // Copying the DBOptions costs microseconds; Stats() is for benchmarks and scrapes, not hot.
  if (const std::shared_ptr<rocksdb::Statistics> rocks = db_->GetDBOptions().statistics) {
    st.stall_micros = rocks->getTickerCount(rocksdb::STALL_MICROS);
  }
  absl::ReaderMutexLock l(&topics_mu_);
  for (const auto& [name, t] : topics_) {
    absl::ReaderMutexLock tl(&t->mu);
    st.segments += t->segments.size();
  }
  return st;
}

}  // namespace evlog::storage
