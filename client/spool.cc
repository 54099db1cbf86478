#include "client/spool.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/spool_format.h"
#include "nlohmann/json.hpp"
#include "rocksdb/db.h"
#include "rocksdb/file_checksum.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "spdlog/spdlog.h"

namespace evlog::client {

// ---------------------------------------------------------------------------------------------
// Format helpers (spool_format.h)
// ---------------------------------------------------------------------------------------------
namespace spool_format {
namespace {

void PutLE(std::string* dst, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) dst->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetLE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
void PutBE(std::string* dst, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) dst->push_back(static_cast<char>(v >> (8 * i)));
}
uint64_t GetBE(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

uint32_t Crc32c(absl::string_view data) {
  static const std::shared_ptr<rocksdb::FileChecksumGenFactory> factory =
      rocksdb::GetFileChecksumGenCrc32cFactory();
  std::unique_ptr<rocksdb::FileChecksumGenerator> gen =
      factory->CreateFileChecksumGenerator(rocksdb::FileChecksumGenContext());
  gen->Update(data.data(), data.size());
  gen->Finalize();
  const std::string sum = gen->GetChecksum();  // 4 big-endian bytes
  return static_cast<uint32_t>(GetBE(sum.data(), 4));
}

std::string EncodeBatch(const BatchFields& batch) {
  std::string out;
  out.reserve(BatchValueSize(batch.topic.size(), batch.records.size()));
  out.push_back(static_cast<char>(kBatchVersion));
  out.push_back(0);
  PutLE(&out, batch.topic.size(), 2);
  PutLE(&out, 0, 4);  // CRC, filled below
  PutLE(&out, static_cast<uint32_t>(batch.record_count), 4);
  PutLE(&out, static_cast<uint32_t>(batch.partition), 4);
  PutLE(&out, static_cast<uint32_t>(batch.base_sequence), 4);
  PutLE(&out, static_cast<uint64_t>(batch.spooled_ms), 8);
  out.append(batch.topic);
  out.append(batch.records);
  const uint32_t crc = Crc32c(absl::string_view(out).substr(8));
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<char>(crc >> (8 * i));
  return out;
}

absl::StatusOr<BatchFields> DecodeBatch(absl::string_view value) {
  if (value.size() < kBatchHeaderSize) {
    return absl::DataLossError(
        absl::StrCat("spooled batch is ", value.size(), " bytes, shorter than its 28-byte header"));
  }
  const char* p = value.data();
  if (static_cast<uint8_t>(p[0]) != kBatchVersion) {
    return absl::DataLossError(
        absl::StrCat("spooled batch has unknown format version ", static_cast<int>(p[0])));
  }
  const size_t topic_len = GetLE(p + 2, 2);
  if (topic_len == 0 || kBatchHeaderSize + topic_len > value.size()) {
    return absl::DataLossError(absl::StrCat("spooled batch has a bad topic length ", topic_len));
  }
  const uint32_t stored = static_cast<uint32_t>(GetLE(p + 4, 4));
  const uint32_t actual = Crc32c(value.substr(8));
  if (stored != actual) {
    return absl::DataLossError(absl::StrCat("spooled batch fails its CRC32C check (stored ", stored,
                                            ", computed ", actual, ")"));
  }
  BatchFields b;
  b.record_count = static_cast<int32_t>(GetLE(p + 8, 4));
  b.partition = static_cast<int32_t>(GetLE(p + 12, 4));
  b.base_sequence = static_cast<int32_t>(GetLE(p + 16, 4));
  b.spooled_ms = static_cast<int64_t>(GetLE(p + 20, 8));
  if (b.record_count <= 0 || b.partition < 0 || b.base_sequence < 0) {
    return absl::DataLossError("spooled batch has a negative or zero count, partition or sequence");
  }
  b.topic = std::string(value.substr(kBatchHeaderSize, topic_len));
  b.records = std::string(value.substr(kBatchHeaderSize + topic_len));
  return b;
}

std::string IdKey(char prefix, uint64_t id) {
  std::string key(1, prefix);
  PutBE(&key, id, 8);
  return key;
}

uint64_t IdOfKey(absl::string_view key) { return GetBE(key.data() + 1, 8); }

std::string PartitionKey(char prefix, absl::string_view topic, int32_t partition) {
  std::string key(1, prefix);
  key.append(topic.data(), topic.size());
  key.push_back('\0');
  PutBE(&key, static_cast<uint32_t>(partition), 4);
  return key;
}

bool ParsePartitionKey(absl::string_view key, std::string* topic, int32_t* partition) {
  if (key.size() < 7 || key[key.size() - 5] != '\0') return false;
  *topic = std::string(key.substr(1, key.size() - 6));
  *partition = static_cast<int32_t>(GetBE(key.data() + key.size() - 4, 4));
  return true;
}

std::string TopicKey(absl::string_view topic) {
  return absl::StrCat(absl::string_view(&kTopicPrefix, 1), topic);
}

std::string MetaKey(absl::string_view name) {
  return absl::StrCat(absl::string_view(&kMetaPrefix, 1), name);
}

}  // namespace spool_format

namespace {

namespace fmt = spool_format;

std::string Fixed(uint64_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>(v >> (8 * i)));
  return s;
}
uint64_t FromFixed(const std::string& s) {
  uint64_t v = 0;
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(s[i]);
  return v;
}

absl::Status FromRocks(const rocksdb::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  const std::string message = absl::StrCat(what, ": ", s.ToString());
  if (s.IsCorruption()) return absl::DataLossError(message);
  if (s.IsIOError() && s.subcode() == rocksdb::Status::kNoSpace) {
    return absl::ResourceExhaustedError(message);
  }
  return absl::InternalError(message);
}

struct Override {
  uint64_t from = 0;
  ProducerIdentity producer;
};

std::string EncodeOverrides(const std::vector<Override>& list) {
  nlohmann::json j = nlohmann::json::array();
  for (const Override& o : list) {
    j.push_back(
        {{"from", o.from}, {"producer_id", o.producer.producer_id}, {"epoch", o.producer.epoch}});
  }
  return j.dump();
}

std::vector<Override> DecodeOverrides(const std::string& text) {
  std::vector<Override> list;
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_array()) return list;
  for (const auto& e : j) {
    list.push_back(
        {e.value("from", uint64_t{0}), {e.value("producer_id", int64_t{0}), e.value("epoch", 0)}});
  }
  return list;
}

using PartitionId = std::pair<std::string, int32_t>;

}  // namespace

// ---------------------------------------------------------------------------------------------
// Spool::Impl
// ---------------------------------------------------------------------------------------------

class Spool::Impl {
 public:
  Impl(std::string dir, SpoolOptions options) : dir_(std::move(dir)), options_(options) {}
  ~Impl() {
    Shutdown();
    if (db_ != nullptr) {
      db_->FlushWAL(/*sync=*/true).PermitUncheckedError();
      db_->Close().PermitUncheckedError();
    }
  }

  absl::Status Load();

  void Shutdown() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

  absl::Status Reserve(int64_t bytes, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    if (bytes > options_.max_bytes) {
      return absl::ResourceExhaustedError(
          absl::StrCat("a batch of ", bytes, " bytes cannot fit in spool ", dir_, " of at most ",
                       options_.max_bytes, " bytes; raise the spool's size limit"));
    }
    auto room = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closed_ || counters_.bytes + counters_.reserved + bytes <= options_.max_bytes;
    };
    if (!room() && options_.when_full == SpoolFullPolicy::kBlock) {
      mu_.AwaitWithDeadline(absl::Condition(&room), deadline);
    }
    if (closed_) return absl::CancelledError(absl::StrCat("spool ", dir_, " is closed"));
    if (!room()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "spool ", dir_, " is full (", counters_.bytes, " bytes stored of at most ",
          options_.max_bytes, "); the server has not acknowledged the spooled events yet",
          options_.when_full == SpoolFullPolicy::kBlock ? " and the wait for room timed out" : ""));
    }
    counters_.reserved += bytes;
    return absl::OkStatus();
  }

  void Unreserve(int64_t bytes) {
    absl::MutexLock lock(&mu_);
    counters_.reserved = std::max<int64_t>(0, counters_.reserved - bytes);
  }

  absl::StatusOr<std::vector<AppendedBatch>> AppendAll(std::vector<NewSpoolBatch> batches,
                                                       int64_t reserved);
  absl::StatusOr<std::vector<SpoolBatch>> Read(uint64_t from_id, int max_batches,
                                               int64_t max_bytes);
  absl::Status Ack(const std::vector<SpoolBatchRef>& batches);
  absl::Status DeadLetter(const SpoolBatchRef& ref, const std::string& topic, int32_t partition,
                          const absl::Status& reason, int64_t producer_id);

  ProducerIdentity Producer() {
    absl::MutexLock lock(&mu_);
    return producer_;
  }
  absl::Status SetProducer(const ProducerIdentity& p) {
    nlohmann::json j = {{"producer_id", p.producer_id}, {"epoch", p.epoch}};
    rocksdb::WriteOptions wo;
    wo.sync = true;
    absl::Status s =
        FromRocks(db_->Put(wo, fmt::MetaKey("producer"), j.dump()), "cannot write spool meta");
    if (s.ok()) {
      absl::MutexLock lock(&mu_);
      producer_ = p;
    }
    return s;
  }

  ProducerIdentity ProducerFor(const std::string& topic, int32_t partition, uint64_t id,
                               uint64_t* override_from) {
    absl::MutexLock lock(&mu_);
    *override_from = 0;
    auto it = overrides_.find({topic, partition});
    if (it != overrides_.end()) {
      for (auto o = it->second.rbegin(); o != it->second.rend(); ++o) {
        if (o->from <= id) {
          *override_from = o->from;
          return o->producer;
        }
      }
    }
    return producer_;
  }

  absl::Status ResolveOverride(const std::string& topic, int32_t partition, uint64_t from,
                               const ProducerIdentity& producer) {
    absl::MutexLock lock(&mu_);
    std::vector<Override> list = overrides_[{topic, partition}];
    for (Override& o : list) {
      if (o.from == from) o.producer = producer;
    }
    rocksdb::WriteOptions wo;
    wo.sync = true;
    absl::Status s =
        FromRocks(db_->Put(wo, fmt::PartitionKey(fmt::kOverridePrefix, topic, partition),
                           EncodeOverrides(list)),
                  "cannot write a producer id override to the spool");
    if (s.ok()) overrides_[{topic, partition}] = std::move(list);
    return s;
  }

  std::optional<int32_t> PartitionCount(const std::string& topic) {
    absl::MutexLock lock(&mu_);
    auto it = partition_counts_.find(topic);
    if (it == partition_counts_.end()) return std::nullopt;
    return it->second;
  }
  absl::Status SetPartitionCount(const std::string& topic, int32_t count) {
    {
      absl::MutexLock lock(&mu_);
      auto it = partition_counts_.find(topic);
      if (it != partition_counts_.end() && it->second == count) return absl::OkStatus();
      partition_counts_[topic] = count;
    }
    return FromRocks(db_->Put({}, fmt::TopicKey(topic), Fixed(static_cast<uint32_t>(count), 4)),
                     "cannot write the spool's topic cache");
  }
  CachedServerLimits Limits() {
    absl::MutexLock lock(&mu_);
    return limits_;
  }
  absl::Status SetLimits(const CachedServerLimits& l) {
    {
      absl::MutexLock lock(&mu_);
      limits_ = l;
    }
    nlohmann::json j = {{"max_record_bytes", l.max_record_bytes},
                        {"max_batch_bytes", l.max_batch_bytes},
                        {"max_batch_records", l.max_batch_records}};
    return FromRocks(db_->Put({}, fmt::MetaKey("limits"), j.dump()),
                     "cannot write the spool's limits cache");
  }

  uint64_t LastId() {
    absl::MutexLock lock(&mu_);
    return next_id_ - 1;
  }
  uint64_t WaitForAppend(uint64_t after_id, absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closed_ || next_id_ - 1 > after_id;
    };
    mu_.AwaitWithDeadline(absl::Condition(&cond), deadline);
    return next_id_ - 1;
  }
  SpoolCounters Counters() {
    absl::MutexLock lock(&mu_);
    return counters_;
  }

  const std::string dir_;
  const SpoolOptions options_;
  std::unique_ptr<rocksdb::DB> db_;

 private:
  // One AppendAll waiting in the writer queue.
  struct Writer {
    std::vector<NewSpoolBatch>* batches;
    int64_t reserved;
    std::vector<AppendedBatch> result;
    absl::Status status;
    bool done = false;
  };

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  SpoolCounters counters_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<PartitionId, int64_t> next_sequence_ ABSL_GUARDED_BY(mu_);
  std::map<PartitionId, std::vector<Override>> overrides_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int32_t> partition_counts_ ABSL_GUARDED_BY(mu_);
  ProducerIdentity producer_ ABSL_GUARDED_BY(mu_);
  CachedServerLimits limits_ ABSL_GUARDED_BY(mu_);
  // The writer queue: the front writer writes for everyone queued behind it.
  std::deque<Writer*> writers_ ABSL_GUARDED_BY(mu_);
};

absl::Status Spool::Impl::Load() {
  // The format version: written at creation, checked at every open.
  std::string value;
  rocksdb::Status rs = db_->Get({}, fmt::MetaKey("format"), &value);
  if (rs.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    if (auto s = FromRocks(db_->Put(wo, fmt::MetaKey("format"), Fixed(fmt::kSpoolVersion, 4)),
                           "cannot initialise the spool");
        !s.ok()) {
      return s;
    }
  } else if (!rs.ok()) {
    return FromRocks(rs, "cannot read the spool's format version");
  } else if (FromFixed(value) != fmt::kSpoolVersion) {
    return absl::DataLossError(absl::StrCat("spool ", dir_, " has format version ",
                                            FromFixed(value), "; this evlog reads version ",
                                            fmt::kSpoolVersion));
  }

  absl::MutexLock lock(&mu_);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}));
  uint64_t max_id = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const rocksdb::Slice k = it->key();
    const std::string key = k.ToString();
    const std::string v = it->value().ToString();
    switch (key[0]) {
      case fmt::kPendingPrefix:
        if (key.size() == 9) {
          max_id = std::max(max_id, fmt::IdOfKey(key));
          ++counters_.pending_batches;
          counters_.bytes += static_cast<int64_t>(v.size());
          if (v.size() >= 12) {
            counters_.pending_records += static_cast<int64_t>(
                static_cast<uint8_t>(v[8]) | (static_cast<uint8_t>(v[9]) << 8) |
                (static_cast<uint8_t>(v[10]) << 16) | (static_cast<uint32_t>(v[11] & 0xff) << 24));
          }
        }
        break;
      case fmt::kDeadPrefix:
        if (key.size() == 9) {
          max_id = std::max(max_id, fmt::IdOfKey(key));
          ++counters_.dead_batches;
          counters_.bytes += static_cast<int64_t>(v.size());
          auto b = fmt::DecodeBatch(v);
          if (b.ok()) counters_.dead_records += b->record_count;
        }
        break;
      case fmt::kSequencePrefix: {
        std::string topic;
        int32_t partition = 0;
        if (fmt::ParsePartitionKey(key, &topic, &partition)) {
          next_sequence_[{topic, partition}] = static_cast<int64_t>(FromFixed(v));
        }
        break;
      }
      case fmt::kOverridePrefix: {
        std::string topic;
        int32_t partition = 0;
        if (fmt::ParsePartitionKey(key, &topic, &partition)) {
          overrides_[{topic, partition}] = DecodeOverrides(v);
        }
        break;
      }
      case fmt::kTopicPrefix:
        partition_counts_[key.substr(1)] = static_cast<int32_t>(FromFixed(v));
        break;
      case fmt::kMetaPrefix:
        if (key == fmt::MetaKey("producer")) {
          auto j = nlohmann::json::parse(v, nullptr, false);
          if (j.is_object()) {
            producer_ = {j.value("producer_id", int64_t{0}), j.value("epoch", 0)};
          }
        } else if (key == fmt::MetaKey("next_id")) {
          next_id_ = std::max<uint64_t>(next_id_, FromFixed(v));
        } else if (key == fmt::MetaKey("limits")) {
          auto j = nlohmann::json::parse(v, nullptr, false);
          if (j.is_object()) {
            limits_ = {j.value("max_record_bytes", int64_t{0}),
                       j.value("max_batch_bytes", int64_t{0}), j.value("max_batch_records", 0)};
          }
        }
        break;
      default:
        break;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "cannot read the spool");
  next_id_ = std::max(next_id_, max_id + 1);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<AppendedBatch>> Spool::Impl::AppendAll(
    std::vector<NewSpoolBatch> batches, int64_t reserved) {
  Writer w{&batches, reserved};
  absl::MutexLock lock(&mu_);
  writers_.push_back(&w);
  auto my_turn = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return w.done || writers_.front() == &w;
  };
  mu_.Await(absl::Condition(&my_turn));
  if (w.done) {
    if (!w.status.ok()) return w.status;
    return std::move(w.result);
  }

  // This writer leads: it writes every queued writer's batches, in queue order, in one synced
  // write. Ids and sequences are computed on copies and committed only once the write is
  // durable, so a failed write leaves no trace.
  std::vector<Writer*> group(writers_.begin(), writers_.end());
  uint64_t next_id = next_id_;
  std::map<PartitionId, int64_t> sequences;
  std::map<PartitionId, std::vector<Override>> new_overrides;
  rocksdb::WriteBatch wb;
  int64_t group_bytes = 0, group_reserved = 0, group_records = 0, group_batches = 0;
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  for (Writer* writer : group) {
    group_reserved += writer->reserved;
    for (NewSpoolBatch& b : *writer->batches) {
      const PartitionId pid{b.topic, b.partition};
      auto seq_it = sequences.find(pid);
      if (seq_it == sequences.end()) {
        auto known = next_sequence_.find(pid);
        seq_it = sequences.emplace(pid, known == next_sequence_.end() ? 0 : known->second).first;
      }
      const uint64_t id = next_id++;
      // Sequences are int32 on the wire. A partition that would pass INT32_MAX starts again
      // at 0 under a fresh producer id (unknown ids may start anywhere).
      if (seq_it->second + b.record_count > INT32_MAX) {
        seq_it->second = 0;
        auto ov = new_overrides.find(pid);
        if (ov == new_overrides.end()) {
          auto existing = overrides_.find(pid);
          ov = new_overrides
                   .emplace(pid, existing == overrides_.end() ? std::vector<Override>{}
                                                              : existing->second)
                   .first;
        }
        ov->second.push_back({id, {}});
        wb.Put(fmt::PartitionKey(fmt::kOverridePrefix, b.topic, b.partition),
               EncodeOverrides(ov->second));
      }
      fmt::BatchFields fields{b.topic,        b.partition, static_cast<int32_t>(seq_it->second),
                              b.record_count, now_ms,      std::move(b.records)};
      const std::string value = fmt::EncodeBatch(fields);
      wb.Put(fmt::IdKey(fmt::kPendingPrefix, id), value);
      writer->result.push_back(
          {id, static_cast<int32_t>(seq_it->second), static_cast<int64_t>(value.size())});
      seq_it->second += b.record_count;
      group_bytes += static_cast<int64_t>(value.size());
      group_records += b.record_count;
      ++group_batches;
    }
  }
  for (const auto& [pid, seq] : sequences) {
    wb.Put(fmt::PartitionKey(fmt::kSequencePrefix, pid.first, pid.second),
           Fixed(static_cast<uint64_t>(seq), 8));
  }
  wb.Put(fmt::MetaKey("next_id"), Fixed(next_id, 8));

  rocksdb::Status rs;
  mu_.Unlock();
  {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    rs = db_->Write(wo, &wb);
  }
  mu_.Lock();
  absl::Status status = FromRocks(rs, absl::StrCat("cannot write to spool ", dir_));
  if (status.ok()) {
    next_id_ = next_id;
    for (auto& [pid, seq] : sequences) next_sequence_[pid] = seq;
    for (auto& [pid, list] : new_overrides) overrides_[pid] = std::move(list);
    counters_.bytes += group_bytes;
    counters_.pending_batches += group_batches;
    counters_.pending_records += group_records;
  } else {
    spdlog::error("{}", std::string(status.message()));
  }
  counters_.reserved = std::max<int64_t>(0, counters_.reserved - group_reserved);
  for (Writer* writer : group) {
    writers_.pop_front();
    writer->status = status;
    if (!status.ok()) writer->result.clear();
    writer->done = true;
  }
  if (!status.ok()) return status;
  return std::move(w.result);
}

absl::StatusOr<std::vector<SpoolBatch>> Spool::Impl::Read(uint64_t from_id, int max_batches,
                                                          int64_t max_bytes) {
  std::vector<SpoolBatch> out;
  int64_t bytes = 0;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator({}));
  const std::string start = fmt::IdKey(fmt::kPendingPrefix, from_id);
  for (it->Seek(start);
       it->Valid() && static_cast<int>(out.size()) < max_batches && bytes < max_bytes; it->Next()) {
    const rocksdb::Slice k = it->key();
    if (k.size() != 9 || k[0] != fmt::kPendingPrefix) break;
    SpoolBatch b;
    b.id = fmt::IdOfKey(absl::string_view(k.data(), k.size()));
    b.bytes = static_cast<int64_t>(it->value().size());
    auto fields = fmt::DecodeBatch(absl::string_view(it->value().data(), it->value().size()));
    if (!fields.ok()) {
      b.integrity = fields.status();
    } else {
      b.topic = std::move(fields->topic);
      b.partition = fields->partition;
      b.base_sequence = fields->base_sequence;
      b.record_count = fields->record_count;
      b.spooled_ms = fields->spooled_ms;
      b.records = std::move(fields->records);
    }
    bytes += b.bytes;
    out.push_back(std::move(b));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "cannot read the spool");
  return out;
}

absl::Status Spool::Impl::Ack(const std::vector<SpoolBatchRef>& batches) {
  if (batches.empty()) return absl::OkStatus();
  rocksdb::WriteBatch wb;
  int64_t bytes = 0, records = 0;
  for (const SpoolBatchRef& b : batches) {
    wb.Delete(fmt::IdKey(fmt::kPendingPrefix, b.id));
    bytes += b.bytes;
    records += b.record_count;
  }
  // Not synced: losing an ack in a crash only causes a resend the server deduplicates.
  absl::Status s = FromRocks(db_->Write({}, &wb), "cannot delete acknowledged batches");
  if (s.ok()) {
    absl::MutexLock lock(&mu_);
    counters_.bytes -= bytes;
    counters_.pending_batches -= static_cast<int64_t>(batches.size());
    counters_.pending_records -= records;
  }
  return s;
}

absl::Status Spool::Impl::DeadLetter(const SpoolBatchRef& ref, const std::string& topic,
                                     int32_t partition, const absl::Status& reason,
                                     int64_t producer_id) {
  std::string value;
  rocksdb::Status rs = db_->Get({}, fmt::IdKey(fmt::kPendingPrefix, ref.id), &value);
  if (!rs.ok()) return FromRocks(rs, "cannot read the batch to dead-letter");
  nlohmann::json why = {{"code", static_cast<int>(reason.code())},
                        {"status", absl::StatusCodeToString(reason.code())},
                        {"message", std::string(reason.message())},
                        {"time_ms", absl::ToUnixMillis(absl::Now())},
                        {"producer_id", producer_id}};
  absl::MutexLock lock(&mu_);
  // A batch whose value is corrupt has no known topic: there is no partition to switch.
  const bool has_partition = !topic.empty();
  std::vector<Override> list;
  if (has_partition) {
    list = overrides_[{topic, partition}];
    list.push_back({ref.id + 1, {}});
  }
  rocksdb::WriteBatch wb;
  wb.Delete(fmt::IdKey(fmt::kPendingPrefix, ref.id));
  wb.Put(fmt::IdKey(fmt::kDeadPrefix, ref.id), value);
  wb.Put(fmt::IdKey(fmt::kDeadReasonPrefix, ref.id), why.dump());
  if (has_partition) {
    wb.Put(fmt::PartitionKey(fmt::kOverridePrefix, topic, partition), EncodeOverrides(list));
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  absl::Status s = FromRocks(db_->Write(wo, &wb), "cannot dead-letter a batch in the spool");
  if (s.ok()) {
    if (has_partition) overrides_[{topic, partition}] = std::move(list);
    counters_.pending_batches -= 1;
    counters_.pending_records -= ref.record_count;
    counters_.dead_batches += 1;
    counters_.dead_records += ref.record_count;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Spool
// ---------------------------------------------------------------------------------------------

namespace {

rocksdb::Options SpoolRocksOptions() {
  rocksdb::Options o;
  o.create_if_missing = true;
  // A spool is small and mostly written once, read once, deleted: a modest memtable and a
  // small number of background jobs keep its footprint low inside an application.
  o.write_buffer_size = 32 << 20;
  o.max_background_jobs = 2;
  o.keep_log_file_num = 2;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  return o;
}

}  // namespace

Spool::Spool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Spool::~Spool() = default;

absl::StatusOr<std::unique_ptr<Spool>> Spool::Open(const std::string& dir,
                                                   const SpoolOptions& options) {
  if (options.max_bytes <= 0) {
    return absl::InvalidArgumentError("the spool's size limit must be positive");
  }
  auto impl = std::make_unique<Impl>(dir, options);
  rocksdb::DB* db = nullptr;
  rocksdb::Status rs = rocksdb::DB::Open(SpoolRocksOptions(), dir, &db);
  if (!rs.ok()) {
    // RocksDB reports a held LOCK file as an IOError mentioning "lock".
    const std::string text = rs.ToString();
    if (rs.IsIOError() && (text.find("lock") != std::string::npos ||
                           text.find("Resource temporarily unavailable") != std::string::npos)) {
      return absl::FailedPreconditionError(
          absl::StrCat("spool ", dir, " is in use by another process (", text,
                       "); stop it, or give this one its own --spool-dir"));
    }
    return FromRocks(rs, absl::StrCat("cannot open spool ", dir));
  }
  impl->db_.reset(db);
  if (absl::Status s = impl->Load(); !s.ok()) return s;
  return std::unique_ptr<Spool>(new Spool(std::move(impl)));
}

absl::StatusOr<SpoolStatus> Spool::Inspect(const std::string& dir) {
  rocksdb::Options o = SpoolRocksOptions();
  o.create_if_missing = false;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status rs = rocksdb::DB::OpenForReadOnly(o, dir, &raw);
  if (!rs.ok()) {
    if (rs.IsInvalidArgument() || rs.IsPathNotFound() ||
        rs.ToString().find("does not exist") != std::string::npos) {
      return absl::NotFoundError(
          absl::StrCat("there is no spool in ", dir, " (", rs.ToString(), ")"));
    }
    return FromRocks(rs, absl::StrCat("cannot open spool ", dir, " for reading"));
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  SpoolStatus st;
  st.dir = dir;
  std::map<PartitionId, SpoolPartitionStatus> parts;
  auto part = [&](const std::string& topic, int32_t partition) -> SpoolPartitionStatus& {
    SpoolPartitionStatus& p = parts[{topic, partition}];
    p.topic = topic;
    p.partition = partition;
    return p;
  };
  std::map<uint64_t, std::string> reasons;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator({}));
  uint64_t max_id = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string key = it->key().ToString();
    const std::string v = it->value().ToString();
    switch (key[0]) {
      case fmt::kPendingPrefix: {
        if (key.size() != 9) break;
        max_id = std::max(max_id, fmt::IdOfKey(key));
        auto b = fmt::DecodeBatch(v);
        st.bytes += static_cast<int64_t>(v.size());
        ++st.pending_batches;
        if (!b.ok()) {
          SpoolPartitionStatus& p = part("(corrupt)", 0);
          ++p.batches;
          p.bytes += static_cast<int64_t>(v.size());
          break;
        }
        SpoolPartitionStatus& p = part(b->topic, b->partition);
        ++p.batches;
        p.records += b->record_count;
        p.bytes += static_cast<int64_t>(v.size());
        if (p.oldest_ms == 0 || b->spooled_ms < p.oldest_ms) p.oldest_ms = b->spooled_ms;
        if (st.oldest_ms == 0 || b->spooled_ms < st.oldest_ms) st.oldest_ms = b->spooled_ms;
        st.pending_records += b->record_count;
        break;
      }
      case fmt::kDeadPrefix: {
        if (key.size() != 9) break;
        max_id = std::max(max_id, fmt::IdOfKey(key));
        SpoolDeadLetter d;
        d.id = fmt::IdOfKey(key);
        d.bytes = static_cast<int64_t>(v.size());
        st.bytes += d.bytes;
        auto b = fmt::DecodeBatch(v);
        if (b.ok()) {
          d.topic = b->topic;
          d.partition = b->partition;
          d.records = b->record_count;
          d.base_sequence = b->base_sequence;
        } else {
          d.topic = "(corrupt)";
        }
        st.dead_letters.push_back(std::move(d));
        break;
      }
      case fmt::kDeadReasonPrefix:
        if (key.size() == 9) reasons[fmt::IdOfKey(key)] = v;
        break;
      case fmt::kSequencePrefix: {
        std::string topic;
        int32_t partition = 0;
        if (fmt::ParsePartitionKey(key, &topic, &partition)) {
          part(topic, partition).next_sequence = static_cast<int64_t>(FromFixed(v));
        }
        break;
      }
      case fmt::kOverridePrefix: {
        std::string topic;
        int32_t partition = 0;
        if (fmt::ParsePartitionKey(key, &topic, &partition)) {
          for (const Override& o : DecodeOverrides(v)) {
            part(topic, partition)
                .overrides.push_back(absl::StrCat("from spool id ", o.from, ": producer id ",
                                                  o.producer.producer_id == 0
                                                      ? std::string("(to be assigned)")
                                                      : absl::StrCat(o.producer.producer_id)));
          }
        }
        break;
      }
      case fmt::kTopicPrefix:
        st.partition_counts[key.substr(1)] = static_cast<int32_t>(FromFixed(v));
        break;
      case fmt::kMetaPrefix:
        if (key == fmt::MetaKey("producer")) {
          auto j = nlohmann::json::parse(v, nullptr, false);
          if (j.is_object()) {
            st.producer = {j.value("producer_id", int64_t{0}), j.value("epoch", 0)};
          }
        } else if (key == fmt::MetaKey("next_id")) {
          st.next_id = std::max<uint64_t>(st.next_id, FromFixed(v));
        } else if (key == fmt::MetaKey("format") && FromFixed(v) != fmt::kSpoolVersion) {
          return absl::DataLossError(absl::StrCat("spool ", dir, " has format version ",
                                                  FromFixed(v), "; this evlog reads version ",
                                                  fmt::kSpoolVersion));
        }
        break;
      default:
        break;
    }
  }
  if (!it->status().ok()) return FromRocks(it->status(), "cannot read the spool");
  st.next_id = std::max(st.next_id, max_id + 1);
  for (SpoolDeadLetter& d : st.dead_letters) d.reason = reasons[d.id];
  for (auto& [pid, p] : parts) st.partitions.push_back(std::move(p));
  return st;
}

const std::string& Spool::dir() const { return impl_->dir_; }
absl::Status Spool::Reserve(int64_t bytes, absl::Time deadline) {
  return impl_->Reserve(bytes, deadline);
}
void Spool::Unreserve(int64_t bytes) { impl_->Unreserve(bytes); }
absl::StatusOr<std::vector<AppendedBatch>> Spool::AppendAll(std::vector<NewSpoolBatch> batches,
                                                            int64_t reserved) {
  return impl_->AppendAll(std::move(batches), reserved);
}
absl::StatusOr<AppendedBatch> Spool::Append(NewSpoolBatch batch, absl::Time deadline) {
  const int64_t size = fmt::BatchValueSize(batch.topic.size(), batch.records.size());
  if (absl::Status s = impl_->Reserve(size, deadline); !s.ok()) return s;
  std::vector<NewSpoolBatch> one;
  one.push_back(std::move(batch));
  auto appended = impl_->AppendAll(std::move(one), size);
  if (!appended.ok()) return appended.status();
  return appended->front();
}
absl::StatusOr<std::vector<SpoolBatch>> Spool::Read(uint64_t from_id, int max_batches,
                                                    int64_t max_bytes) {
  return impl_->Read(from_id, max_batches, max_bytes);
}
absl::Status Spool::Ack(const std::vector<SpoolBatchRef>& batches) { return impl_->Ack(batches); }
absl::Status Spool::DeadLetter(const SpoolBatchRef& ref, const std::string& topic,
                               int32_t partition, const absl::Status& reason, int64_t producer_id) {
  return impl_->DeadLetter(ref, topic, partition, reason, producer_id);
}
ProducerIdentity Spool::Producer() { return impl_->Producer(); }
absl::Status Spool::SetProducer(const ProducerIdentity& producer) {
  return impl_->SetProducer(producer);
}
ProducerIdentity Spool::ProducerFor(const std::string& topic, int32_t partition, uint64_t id,
                                    uint64_t* override_from) {
  return impl_->ProducerFor(topic, partition, id, override_from);
}
absl::Status Spool::ResolveOverride(const std::string& topic, int32_t partition, uint64_t from,
                                    const ProducerIdentity& producer) {
  return impl_->ResolveOverride(topic, partition, from, producer);
}
std::optional<int32_t> Spool::PartitionCount(const std::string& topic) {
  return impl_->PartitionCount(topic);
}
absl::Status Spool::SetPartitionCount(const std::string& topic, int32_t count) {
  return impl_->SetPartitionCount(topic, count);
}
CachedServerLimits Spool::Limits() { return impl_->Limits(); }
absl::Status Spool::SetLimits(const CachedServerLimits& limits) { return impl_->SetLimits(limits); }
uint64_t Spool::LastId() { return impl_->LastId(); }
uint64_t Spool::WaitForAppend(uint64_t after_id, absl::Time deadline) {
  return impl_->WaitForAppend(after_id, deadline);
}
SpoolCounters Spool::Counters() { return impl_->Counters(); }
void Spool::Shutdown() { impl_->Shutdown(); }

}  // namespace evlog::client
