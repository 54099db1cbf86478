// The writer thread of LogStoreImpl: group commit of appends, segment rolls, retention,
// truncation and topic deletion. See log_store_impl.h for why one thread does all of this.
#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"
#include "storage/batch_codec.h"
#include "storage/coding.h"
#include "storage/file_syncer.h"
#include "storage/log_store_impl.h"
#include "storage/retention.h"
#include "storage/rocks_status.h"

namespace evlog::storage {

namespace {

rocksdb::WriteOptions SyncedWrite() {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return wo;
}

}  // namespace

void LogStoreImpl::Enqueue(WriteRequest req) {
  absl::Status rejected;
  {
    absl::MutexLock l(&queue_mu_);
    TopicQueue& q = topic_queues_[req.topic.get()];
    const uint64_t size = req.batch.size();
    if (stopping_) {
      rejected = absl::UnavailableError("the log store is closing; retry on another server");
    } else if (write_failed_) {
      rejected = absl::UnavailableError(
          "the log store stopped accepting writes after a storage write failed; restart the "
          "server (see its log)");
    } else if (q.bytes > 0 && (q.bytes + size > options_.max_topic_queued_bytes ||
                               queued_bytes_ + size > options_.max_queued_bytes)) {
      // A topic with nothing queued is always let in, so a flood elsewhere cannot lock it out.
      rejected = absl::ResourceExhaustedError(
          absl::StrCat("the write queue is full (", queued_bytes_, " bytes queued, ", q.bytes,
                       " for this topic); retry shortly"));
    } else {
      if (q.requests.empty()) ready_topics_.push_back(req.topic.get());
      q.bytes += size;
      queued_bytes_ += size;
      q.requests.push_back(std::move(req));
      return;
    }
    if (q.requests.empty()) topic_queues_.erase(req.topic.get());
  }
  req.done(rejected);
}

absl::Status LogStoreImpl::RunControl(std::function<absl::Status()> op) {
  absl::Notification finished;
  absl::Status result;
  WriteRequest req;
  req.control = [&] {
    result = op();
    finished.Notify();
  };
  {
    absl::MutexLock l(&queue_mu_);
    if (stopping_) return absl::UnavailableError("the log store is closing");
    control_queue_.push_back(std::move(req));
  }
  finished.WaitForNotification();
  return result;
}

void LogStoreImpl::WriterLoop() {
  std::vector<WriteRequest> group;
  for (;;) {
    group.clear();
    WriteRequest control;
    bool exit = false;
    {
      absl::MutexLock l(&queue_mu_);
      auto ready = [](LogStoreImpl* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return !s->control_queue_.empty() || !s->ready_topics_.empty() || s->stopping_;
      };
      if (unsynced_) {
        // kInterval: wake up when the next sync is due even if nothing arrives.
        queue_mu_.AwaitWithDeadline(absl::Condition(+ready, this),
                                    last_sync_ + options_.fsync_interval);
      } else {
        queue_mu_.Await(absl::Condition(+ready, this));
      }
      if (!control_queue_.empty()) {
        control = std::move(control_queue_.front());
        control_queue_.pop_front();
      } else if (ready_topics_.empty()) {
        exit = stopping_;  // else the sync interval passed with nothing new to write
      } else {
        // Round-robin over topics, one batch at a time, up to the group's byte budget.
        uint64_t bytes = 0;
        while (!ready_topics_.empty()) {
          TopicState* topic = ready_topics_.front();
          TopicQueue& q = topic_queues_[topic];
          const uint64_t size = q.requests.front().batch.size();
          if (!group.empty() && bytes + size > options_.max_write_group_bytes) break;
          bytes += size;
          q.bytes -= size;
          group.push_back(std::move(q.requests.front()));
          q.requests.pop_front();
          ready_topics_.pop_front();
          if (q.requests.empty()) {
            topic_queues_.erase(topic);
          } else {
            ready_topics_.push_back(topic);
          }
        }
        queued_bytes_ -= bytes;
      }
    }
    if (control.control) {
      control.control();
    } else if (!group.empty()) {
      WriteAppendGroup(group);
    }
    // kInterval: sync when due, and once more on the way out so that a clean close loses
    // nothing acknowledged.
    if (unsynced_ && (exit || absl::Now() - last_sync_ >= options_.fsync_interval)) {
      // A failure is logged and stops further appends (write_failed_).
      SyncOnWriter().IgnoreError();
    }
    if (exit) {
      RecordDurableLengths();
      return;
    }
  }
}

void LogStoreImpl::WriteAppendGroup(std::vector<WriteRequest>& group) {
  if (write_failed_) {
    // Queued before a storage write failed: nothing more is written, or a later batch could be
    // stored above offsets that never reached the disk.
    for (WriteRequest& req : group) {
      req.done(absl::UnavailableError(
          "the log store stopped accepting writes after a storage write failed; restart the "
          "server (see its log)"));
    }
    return;
  }
  struct PendingEntry {
    TopicState* topic;
    PartitionState* partition;
    uint32_t partition_index;
    uint64_t seq;
    meta::IndexEntry entry;
  };
  // Keyed by (topic, partition, segment): a group may roll a topic's segment midway.
  absl::flat_hash_map<std::tuple<TopicState*, int32_t, uint64_t>, PendingEntry> pending;
  std::vector<absl::StatusOr<AppendResult>> results(group.size());
  absl::flat_hash_map<std::tuple<TopicState*, int32_t, int64_t>, const ProducerState*>
      touched_producers;
  // The batches go to their segments' data files; the write batch holds only their locations
  // (about 40 bytes each with key and framing), index entries and producer states.
  rocksdb::WriteBatch wb(4096 + 48 * group.size());
  const int64_t now = NowMs();
  uint64_t records = 0, bytes = 0, appends = 0;
  // Segments given frames by this group, each once, with their topic.
  std::vector<std::pair<TopicState*, std::shared_ptr<Segment>>> touched;
  absl::Status file_error;

  for (size_t i = 0; i < group.size(); ++i) {
    WriteRequest& req = group[i];
    TopicState* t = req.topic.get();
    std::shared_ptr<Segment> seg;
    PartitionState* p = nullptr;
    {
      absl::ReaderMutexLock l(&t->mu);
      if (!t->deleted) {
        seg = t->segments.rbegin()->second;
        p = &t->partitions[req.partition];
      }
    }
    if (seg == nullptr) {
      results[i] = absl::NotFoundError(absl::StrCat("topic '", t->name, "' was deleted"));
      continue;
    }
    ProducerState* producer = nullptr;
    if (req.producer.producer_id >= 0) {
      auto found = p->producers.find(req.producer.producer_id);
      SequenceVerdict v = CheckSequence(found == p->producers.end() ? nullptr : &found->second,
                                        req.producer, req.record_count);
      if (v.kind == SequenceVerdict::kDuplicate) {
        const ProducerBatch& b = v.original;
        results[i] = AppendResult{b.base_offset, b.base_offset + b.last_sequence - b.first_sequence,
                                  req.append_time_ms, /*duplicate=*/true};
        continue;
      }
      if (v.kind == SequenceVerdict::kRefused) {
        results[i] = v.error;
        continue;
      }
      producer = &p->producers[req.producer.producer_id];
    }
    const bool full = seg->bytes + req.batch.size() > options_.segment_max_bytes;
    const bool old = absl::Milliseconds(now - seg->created_ms) >= options_.segment_max_age;
    if (seg->bytes > 0 && (full || old)) {
      absl::Status s = RollSegment(t, &wb);
      if (!s.ok() && write_failed_) {
        file_error = s;  // the sealed segment's file failed: fails the whole group below
        for (size_t j = i; j < group.size(); ++j) results[j] = file_error;
        break;
      }
      if (!s.ok()) {
        results[i] = s;
        continue;
      }
      absl::ReaderMutexLock l(&t->mu);
      seg = t->segments.rbegin()->second;
    }

    const int64_t base = p->log_end_offset;
    absl::StatusOr<BatchLocation> location =
        seg->file->Append(static_cast<uint32_t>(req.partition), base, req.batch);
    if (!location.ok()) {
      file_error = location.status();  // fails the whole group below
      for (size_t j = i; j < group.size(); ++j) results[j] = file_error;
      break;
    }
    if (std::none_of(touched.begin(), touched.end(),
                     [&](const auto& ts) { return ts.second == seg; })) {
      touched.emplace_back(t, seg);
    }
    p->log_end_offset += req.record_count;
    if (producer != nullptr) {
      RecordAppend(producer, req.producer, req.record_count, base, now);
      touched_producers[{t, req.partition, req.producer.producer_id}] = producer;
    }
    wb.Put(seg->cf, meta::BatchKey(req.partition, base), EncodeBatchLocation(*location));
    // Once per segment, also for one found past half at open.
    if (!seg->spare_asked && seg->bytes + req.batch.size() >= options_.segment_max_bytes / 2) {
      seg->spare_asked = true;
      RequestSpare(req.topic);
    }
    seg->bytes += req.batch.size();

    auto key = std::make_tuple(t, req.partition, seg->seq);
    auto it = pending.find(key);
    if (it == pending.end()) {
      PendingEntry pe{t, p, static_cast<uint32_t>(req.partition), seg->seq, {}};
      absl::ReaderMutexLock l(&t->mu);
      auto existing = p->entries.find(seg->seq);
      if (existing != p->entries.end()) {
        pe.entry = existing->second;
      } else {
        pe.entry.first_offset = base;
      }
      it = pending.emplace(key, pe).first;
    }
    meta::IndexEntry& e = it->second.entry;
    e.end_offset = base + req.record_count;
    e.bytes += req.batch.size();
    e.last_append_ms = req.append_time_ms;
    e.max_timestamp_ms = std::max(e.max_timestamp_ms, req.max_timestamp_ms);

    results[i] = AppendResult{base, base + req.record_count - 1, req.append_time_ms};
    records += req.record_count;
    bytes += req.batch.size();
    ++appends;
  }

  for (const auto& [key, pe] : pending) {
    wb.Put(meta_cf_, meta::IndexKey(pe.topic->id, pe.seq, pe.partition_index),
           meta::EncodeIndexEntry(pe.entry));
  }

  for (const auto& [key, state] : touched_producers) {
    const auto& [topic, partition, producer_id] = key;
    wb.Put(meta_cf_, meta::ProducerStateKey(topic->id, partition, producer_id),
           EncodeProducerState(*state));
  }

  // A storage failure fails the group's appends (those not already answered as duplicates or
  // refusals) and stops all further writes: the files' and RocksDB's tails are unknown now,
  // and a restart's recovery keeps only what is durable. Offsets assigned are not reused.
  auto fail_group = [&](const absl::Status& error, const char* what) {
    write_failed_ = true;
    spdlog::error("{} failed, refusing further appends: {}", what, error.ToString());
    const absl::Status failed = absl::UnavailableError(
        absl::StrCat(what, " failed (the batch may or may not be stored): ", error.message()));
    for (auto& r : results) {
      if (r.ok() || r.status() == error) r = failed;
    }
  };

  // The frames are written first, so that readers can read them once they are published.
  // Under kAlways the data files are then fsynced on the syncer's threads, in parallel, while this
  // thread writes the locations to RocksDB (and fsyncs its WAL): the group is acknowledged only
  // when both are durable. A location can thus be durable a moment before its frame, but only in a
  // group that nobody was told is stored: each group also records, per data file, the length
  // that earlier groups made durable, and at open the frames past it are checked, so such a
  // location is dropped (segment_file_format.h, "Durability").
  const bool sync = options_.fsync_policy == FsyncPolicy::kAlways;
  std::vector<SegmentFile*> to_sync;
  if (sync) {
    // What the last group made durable in files this group does not write (a sealed segment's
    // last frames, or a quiet topic's) is recorded now: otherwise it would stay unrecorded.
    for (const std::shared_ptr<Segment>& seg : unrecorded_segments_) {
      if (std::none_of(touched.begin(), touched.end(),
                       [&](const auto& ts) { return ts.second == seg; })) {
        wb.Put(meta_cf_, meta::SegmentDurableKey(seg->topic_id, seg->seq),
               meta::EncodeU64(seg->file->synced_size()));
      }
    }
  }
  for (const auto& [topic, seg] : touched) {
    if (!file_error.ok()) break;
    file_error = seg->file->Flush();
    if (!file_error.ok()) break;
    if (sync) {
      wb.Put(meta_cf_, meta::SegmentDurableKey(topic->id, seg->seq),
             meta::EncodeU64(seg->file->synced_size()));
      to_sync.push_back(seg->file.get());
    } else if (std::find(unsynced_segments_.begin(), unsynced_segments_.end(), seg) ==
               unsynced_segments_.end()) {
      unsynced_segments_.push_back(seg);
    }
  }
  if (!file_error.ok()) {
    fail_group(file_error, "writing a segment file");
    for (size_t i = 0; i < group.size(); ++i) group[i].done(std::move(results[i]));
    return;
  }

  if (sync) syncer_.Start(to_sync);
  rocksdb::Status s;
  if (wb.Count() > 0) {
    rocksdb::WriteOptions wo;
    wo.sync = sync;
    s = db_->Write(wo, &wb);
    ++stat_groups_;
  }
  if (sync) {
    file_error = syncer_.Wait();
    if (file_error.ok()) stat_fsyncs_ += to_sync.size();
  }
  if (!file_error.ok()) {
    fail_group(file_error, "syncing a segment file");
  } else if (!s.ok()) {
    fail_group(FromRocks(s, "writing batch locations"), "writing batch locations");
  } else if (wb.Count() > 0) {
    if (sync) {
      ++stat_fsyncs_;
      unrecorded_segments_.clear();
      for (const auto& [topic, seg] : touched) unrecorded_segments_.push_back(seg);
    } else {
      unsynced_ = true;
    }
    stat_appends_ += appends;
    stat_records_ += records;
    stat_bytes_ += bytes;
    // Publish: the batches are durable (under the policy), so readers may see them.
    for (const auto& [key, pe] : pending) {
      absl::MutexLock l(&pe.topic->mu);
      pe.partition->entries[pe.seq] = pe.entry;
      // Invariant: high_watermark <= log_end_offset; one writer, so all below is written.
      pe.partition->high_watermark = pe.partition->log_end_offset;
    }
  }
  for (size_t i = 0; i < group.size(); ++i) group[i].done(std::move(results[i]));
}

absl::Status LogStoreImpl::RollSegment(TopicState* t, rocksdb::WriteBatch* wb) {
  std::shared_ptr<Segment> old;
  {
    absl::ReaderMutexLock l(&t->mu);
    old = t->segments.rbegin()->second;
  }
  // Under kInterval the WAL is synced before the old segment is flushed, so RocksDB never
  // flushes around unsynced WAL data.
  if (absl::Status s = SyncOnWriter(); !s.ok()) return s;
  // The sealed segment takes no more appends: its frames so far (this group's too) are synced
  // and its file is closed for writing, so that only active segments hold a writable file.
  if (absl::Status s = old->file->CloseForAppends(); !s.ok()) {
    write_failed_ = true;
    spdlog::error("sealing a segment file failed, refusing further appends: {}", s.ToString());
    return absl::UnavailableError(s.message());
  }
  const int64_t now = NowMs();
  absl::StatusOr<std::shared_ptr<Segment>> seg = NextSegment(t, old->seq + 1, now);
  if (!seg.ok()) return seg.status();
  wb->Put(meta_cf_, meta::SegmentRecordKey(t->id, old->seq + 1),
          meta::EncodeU64(static_cast<uint64_t>(now)));
  {
    absl::MutexLock l(&t->mu);
    t->segments[old->seq + 1] = *seg;
  }
  // The sealed segment's memtable can go to disk now; it will never be written again.
  rocksdb::FlushOptions fo;
  fo.wait = false;
  fo.allow_write_stall = true;
  db_->Flush(fo, old->cf);
  ++stat_rolled_;
  return absl::OkStatus();
}

absl::Status LogStoreImpl::ApplyRetention(const std::shared_ptr<TopicState>& t) {
  const int64_t now = NowMs();
  // An aged active segment rolls first so that it can expire like the others.
  {
    bool roll = false;
    {
      absl::ReaderMutexLock l(&t->mu);
      if (t->deleted) return absl::OkStatus();
      const Segment& active = *t->segments.rbegin()->second;
      roll = active.bytes > 0 &&
             absl::Milliseconds(now - active.created_ms) >= options_.segment_max_age;
    }
    if (roll) {
      rocksdb::WriteBatch wb;
      absl::Status s = RollSegment(t.get(), &wb);
      if (s.ok()) s = FromRocks(db_->Write(SyncedWrite(), &wb), "recording a new segment");
      if (!s.ok()) return s;
    }
  }

  std::vector<PartitionRetentionInput> inputs;
  std::vector<uint64_t> seqs;
  uint64_t active = 0;
  {
    absl::ReaderMutexLock l(&t->mu);
    for (const PartitionState& p : t->partitions) {
      inputs.push_back({p.start_offset, p.entries});
    }
    for (const auto& [seq, seg] : t->segments) seqs.push_back(seq);
    active = seqs.back();
  }
  RetentionPlan plan = PlanRetention(t->config, inputs, seqs, active, now);

  rocksdb::WriteBatch wb;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (plan.start_offsets[i] != inputs[i].start_offset) {
      wb.Put(meta_cf_, meta::StartOffsetKey(t->id, i),
             meta::EncodeU64(static_cast<uint64_t>(plan.start_offsets[i])));
    }
  }
  for (uint64_t seq : plan.drop_segments) {
    wb.Delete(meta_cf_, meta::SegmentRecordKey(t->id, seq));
    wb.Delete(meta_cf_, meta::SegmentDurableKey(t->id, seq));
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (inputs[i].entries.contains(seq)) wb.Delete(meta_cf_, meta::IndexKey(t->id, seq, i));
    }
  }
  // Idempotent producers idle for longer than their TTL are forgotten.
  const int64_t ttl_ms = absl::ToInt64Milliseconds(options_.producer_state_ttl);
  std::vector<std::pair<PartitionState*, int64_t>> expired;
  {
    absl::ReaderMutexLock l(&t->mu);
    for (size_t i = 0; i < t->partitions.size(); ++i) {
      PartitionState& p = t->partitions[i];  // producers: writer-only, and we are it
      for (const auto& [producer_id, state] : p.producers) {
        if (now - state.last_append_ms > ttl_ms) {
          wb.Delete(meta_cf_, meta::ProducerStateKey(t->id, i, producer_id));
          expired.emplace_back(&p, producer_id);
        }
      }
    }
  }
  if (wb.Count() == 0) return absl::OkStatus();
  // Start offsets are durable before any segment goes, so a crash in between leaves a
  // segment that the next pass drops, never a readable range without data.
  absl::Status s = FromRocks(db_->Write(SyncedWrite(), &wb), "applying retention");
  if (!s.ok()) return s;
  for (const auto& [p, producer_id] : expired) p->producers.erase(producer_id);

  std::vector<std::shared_ptr<Segment>> dropped;
  {
    absl::MutexLock l(&t->mu);
    for (size_t i = 0; i < inputs.size(); ++i) {
      PartitionState& p = t->partitions[i];
      p.start_offset = plan.start_offsets[i];
      for (uint64_t seq : plan.drop_segments) p.entries.erase(seq);
    }
    for (uint64_t seq : plan.drop_segments) {
      dropped.push_back(t->segments[seq]);
      t->segments.erase(seq);
    }
  }
  for (const std::shared_ptr<Segment>& seg : dropped) {
    // Readers still holding the segment keep reading it; its handle goes with the last one.
    ForgetSegment(seg);
    DropSegment(*seg);
    ++stat_dropped_;
  }
  return absl::OkStatus();
}

absl::Status LogStoreImpl::DoDeleteTopic(const std::shared_ptr<TopicState>& t) {
  {
    absl::MutexLock l(&t->mu);
    if (t->deleted) return absl::NotFoundError(absl::StrCat("topic '", t->name, "' was deleted"));
    t->deleted = true;  // readers and queued appends now see NOT_FOUND; waiters wake
  }
  rocksdb::WriteBatch wb;
  wb.Delete(meta_cf_, meta::TopicKey(t->name));
  for (char prefix :
       {meta::kStartOffsetPrefix, meta::kSegmentRecordPrefix, meta::kIndexPrefix,
        meta::kSegmentDurablePrefix, meta::kEpochPrefix, meta::kProducerStatePrefix}) {
    wb.DeleteRange(meta_cf_, meta::TopicScopedPrefix(prefix, t->id),
                   meta::TopicScopedLimit(prefix, t->id));
  }
  // Committed offsets of every group for this topic go too (keys are group-first).
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
    const std::string c(1, meta::kCommittedOffsetPrefix);
    for (it->Seek(c); it->Valid() && it->key().starts_with(c); it->Next()) {
      const rocksdb::Slice key = it->key();
      if (key.size() >= 9 && DecodeBigEndian32(key.data() + key.size() - 8) == t->id) {
        wb.Delete(meta_cf_, key);
      }
    }
  }
  absl::Status s = FromRocks(db_->Write(SyncedWrite(), &wb), "deleting a topic");
  std::map<uint64_t, std::shared_ptr<Segment>> segments;
  {
    absl::MutexLock l(&t->mu);
    if (!s.ok()) {
      t->deleted = false;
      return s;
    }
    segments.swap(t->segments);
  }
  if (std::shared_ptr<Segment> spare = TakeSpare(t.get()); spare != nullptr) {
    segments[spare->seq] = std::move(spare);
  }
  // A crash before these drops leaves orphan segments that the next Open drops.
  for (auto& [seq, seg] : segments) {
    ForgetSegment(seg);
    DropSegment(*seg);
    ++stat_dropped_;
  }
  return absl::OkStatus();
}

absl::Status LogStoreImpl::DoTruncate(const std::shared_ptr<TopicState>& t, int32_t partition,
                                      int64_t new_end) {
  std::vector<std::pair<std::shared_ptr<Segment>, meta::IndexEntry>> affected;
  PartitionState* p = nullptr;
  {
    absl::ReaderMutexLock l(&t->mu);
    if (t->deleted) return absl::NotFoundError(absl::StrCat("topic '", t->name, "' was deleted"));
    p = &t->partitions[partition];
    if (new_end < p->start_offset || new_end > p->log_end_offset) {
      return absl::OutOfRangeError(absl::StrCat(
          "cannot truncate topic '", t->name, "' partition ", partition, " to offset ", new_end,
          ": valid range is [", p->start_offset, ", ", p->log_end_offset, "]"));
    }
    if (new_end == p->log_end_offset) return absl::OkStatus();
    for (const auto& [seq, e] : p->entries) {
      if (e.end_offset > new_end) affected.emplace_back(t->segments.at(seq), e);
    }
  }
  rocksdb::WriteBatch wb;
  const std::string from = meta::BatchKey(partition, new_end);
  const std::string to = meta::BatchKey(partition + 1, 0);
  bool boundary = false;
  for (auto& [seg, e] : affected) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), seg->cf));
    uint32_t key_partition = 0;
    int64_t base = 0;
    uint64_t removed = 0;
    for (it->Seek(from); it->Valid(); it->Next()) {
      meta::ParseBatchKey(absl::string_view(it->key().data(), it->key().size()), &key_partition,
                          &base);
      if (key_partition != static_cast<uint32_t>(partition)) break;
      if (base == new_end) boundary = true;
      std::optional<BatchLocation> location =
          DecodeBatchLocation(absl::string_view(it->value().data(), it->value().size()));
      if (location.has_value()) removed += location->batch_length;
    }
    if (!it->status().ok()) return FromRocks(it->status(), "scanning for truncation");
    wb.DeleteRange(seg->cf, from, to);
    if (e.first_offset >= new_end) {
      wb.Delete(meta_cf_, meta::IndexKey(t->id, seg->seq, partition));
      e.end_offset = e.first_offset;  // marks the entry for removal below
    } else {
      e.end_offset = new_end;
    }
    e.bytes -= std::min(e.bytes, removed);
    if (e.end_offset > e.first_offset) {
      wb.Put(meta_cf_, meta::IndexKey(t->id, seg->seq, partition), meta::EncodeIndexEntry(e));
    }
  }
  if (!boundary) {
    return absl::InvalidArgumentError(
        absl::StrCat("offset ", new_end, " is not the first offset of a batch of topic '", t->name,
                     "' partition ", partition, "; truncate only at batch boundaries"));
  }
  // Idempotent producers forget the batches that are gone, so their retries are written again.
  std::vector<int64_t> forgotten;
  std::vector<std::pair<int64_t, ProducerState>> kept;
  for (const auto& [producer_id, state] : p->producers) {
    ProducerState copy = state;
    while (!copy.batches.empty() && copy.batches.back().base_offset >= new_end) {
      copy.batches.pop_back();
    }
    if (copy.batches.size() == state.batches.size()) continue;
    if (copy.batches.empty()) {
      wb.Delete(meta_cf_, meta::ProducerStateKey(t->id, partition, producer_id));
      forgotten.push_back(producer_id);
    } else {
      wb.Put(meta_cf_, meta::ProducerStateKey(t->id, partition, producer_id),
             EncodeProducerState(copy));
      kept.emplace_back(producer_id, std::move(copy));
    }
  }
  absl::Status s = FromRocks(db_->Write(SyncedWrite(), &wb), "truncating a partition");
  if (s.ok()) {
    for (int64_t id : forgotten) p->producers.erase(id);
    for (auto& [id, state] : kept) p->producers[id] = std::move(state);
  }
  if (!s.ok()) return s;
  absl::MutexLock l(&t->mu);
  for (const auto& [seg, e] : affected) {
    if (e.end_offset > e.first_offset) {
      p->entries[seg->seq] = e;
    } else {
      p->entries.erase(seg->seq);
    }
  }
  p->log_end_offset = new_end;
  p->high_watermark = new_end;
  ++p->truncations;
  return absl::OkStatus();
}

void LogStoreImpl::ForgetSegment(const std::shared_ptr<Segment>& segment) {
  std::erase(unsynced_segments_, segment);
  std::erase(unrecorded_segments_, segment);
}

void LogStoreImpl::RecordDurableLengths() {
  if (write_failed_ || unrecorded_segments_.empty()) return;
  rocksdb::WriteBatch wb;
  for (const std::shared_ptr<Segment>& seg : unrecorded_segments_) {
    wb.Put(meta_cf_, meta::SegmentDurableKey(seg->topic_id, seg->seq),
           meta::EncodeU64(seg->file->synced_size()));
  }
  rocksdb::Status s = db_->Write(SyncedWrite(), &wb);
  if (!s.ok()) spdlog::warn("recording segment files' durable lengths: {}", s.ToString());
  unrecorded_segments_.clear();
}

absl::Status LogStoreImpl::SyncOnWriter() {
  if (write_failed_) {
    return absl::UnavailableError("a storage write failed; the write-ahead log cannot be synced");
  }
  if (!unsynced_) return absl::OkStatus();
  last_sync_ = absl::Now();
  // Data files first, then the write-ahead log with each file's new durable length: a
  // durable length never runs ahead of the data it vouches for.
  rocksdb::WriteBatch wb;
  for (const std::shared_ptr<Segment>& seg : unsynced_segments_) {
    if (absl::Status s = seg->file->Sync(); !s.ok()) {
      write_failed_ = true;
      spdlog::error("segment file sync failed, refusing further appends: {}", s.ToString());
      return s;
    }
    ++stat_fsyncs_;
    wb.Put(meta_cf_, meta::SegmentDurableKey(seg->topic_id, seg->seq),
           meta::EncodeU64(seg->file->synced_size()));
  }
  unsynced_segments_.clear();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  rocksdb::Status s = wb.Count() > 0 ? db_->Write(wo, &wb) : db_->SyncWAL();
  if (!s.ok()) {
    write_failed_ = true;
    spdlog::error("WAL sync failed, refusing further appends: {}", s.ToString());
    return FromRocks(s, "syncing the write-ahead log");
  }
  unsynced_ = false;
  ++stat_fsyncs_;
  return absl::OkStatus();
}

void LogStoreImpl::RetentionLoop() {
  // Wakes every second to let go of stale read cursors, and runs retention when it is due
  // (never with a zero interval: then the owner calls RunRetention).
  constexpr absl::Duration kCursorCheck = absl::Seconds(1);
  const bool retention = options_.retention_check_interval > absl::ZeroDuration();
  absl::Time retention_due =
      retention ? absl::Now() + options_.retention_check_interval : absl::InfiniteFuture();
  for (;;) {
    {
      absl::MutexLock l(&threads_mu_);
      threads_mu_.AwaitWithTimeout(
          absl::Condition(&threads_stop_),
          std::min(kCursorCheck, std::max(absl::ZeroDuration(), retention_due - absl::Now())));
      if (threads_stop_) return;
    }
    ReleaseStaleCursors();
    if (absl::Now() < retention_due) continue;
    retention_due = absl::Now() + options_.retention_check_interval;
    absl::Status s = RunRetention();
    if (!s.ok()) spdlog::warn("retention pass failed: {}", s.ToString());
  }
}

}  // namespace evlog::storage
