#include "client/spooled_producer.h"

#include <algorithm>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/admin.h"
#include "client/channel.h"
#include "client/grpc_status.h"
#include "client/spool_format.h"
#include "client/watchdog.h"
#include "evlog/v1/evlog.grpc.pb.h"
#include "evlog/v1/partitioner.h"
#include "spdlog/spdlog.h"

namespace evlog::client {
namespace {

using ProduceStream =
    grpc::ClientReaderWriter<evlog::v1::ProduceRequest, evlog::v1::ProduceResponse>;
using PartitionId = std::pair<std::string, int32_t>;

// The server recognises a retry only among a partition's last 5 batches
// (storage/producer_state.h): never more in flight per partition, so every resend is
// recognised.
constexpr int kMaxInFlightPerPartition = 5;
// Room left in a request for its fields besides the records.
constexpr int64_t kRequestOverhead = 1024;
// Defaults when the server's limits were never seen (evlogd's defaults).
constexpr int64_t kDefaultMaxRecordBytes = 1 << 20;
// How much the drain reads from the spool at a time.
constexpr int kReadAheadBatches = 64;
constexpr int64_t kReadAheadBytes = 8 << 20;
// A stream with nothing to send for this long is closed (a new one opens with the next batch).
constexpr absl::Duration kIdleStreamTimeout = absl::Seconds(60);

void AppendVarint(std::string* dst, uint64_t v) {
  while (v >= 0x80) {
    dst->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  dst->push_back(static_cast<char>(v));
}

int64_t RecordBytes(const ProducerRecord& r) {
  int64_t size = static_cast<int64_t>(r.key.size() + r.value.size());
  for (const Header& h : r.headers) size += static_cast<int64_t>(h.name.size() + h.value.size());
  return size;
}

bool IsSequenceGap(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) && absl::StrContains(s.message(), "sequence gap");
}

// Refused for good: sending the batch again can never succeed (no such topic or partition, a
// malformed batch, fenced, an unexplained sequence gap, corrupt data). Every other code
// (UNAVAILABLE, RESOURCE_EXHAUSTED, DEADLINE_EXCEEDED, INTERNAL, UNAUTHENTICATED ...) is
// retried with backoff: a misconfiguration must stall delivery, not discard events.
bool IsPermanent(const absl::Status& s) {
  return absl::IsNotFound(s) || absl::IsInvalidArgument(s) || absl::IsOutOfRange(s) ||
         absl::IsFailedPrecondition(s) || absl::IsDataLoss(s);
}

absl::Status FromError(const evlog::v1::Error& e) {
  absl::Status s(static_cast<absl::StatusCode>(e.code()), e.message());
  if (e.retry_after_ms() > 0) {
    s.SetPayload(kRetryAfterPayload, absl::Cord(absl::StrCat(e.retry_after_ms())));
  }
  return s;
}

// Records gathered for one partition, not yet spooled.
struct Gathering {
  std::string topic;
  int32_t partition = 0;
  std::string records;  // serialized ProduceRequest field 4 entries
  int32_t count = 0;
  int64_t reserved = 0;  // spool room taken for them
  absl::Time first = absl::InfiniteFuture();
  std::vector<std::pair<int32_t, SpooledProducer::Callback>> callbacks;
};

// Callbacks waiting for a spooled batch's outcome.
struct PendingCallbacks {
  std::string topic;
  int32_t partition = 0;
  std::vector<std::pair<int32_t, SpooledProducer::Callback>> callbacks;
};

// A batch on the current stream.
struct InFlight {
  SpoolBatch batch;  // without its records (they are in the request already sent)
  uint64_t request_id = 0;
  int64_t producer_id = 0;
  absl::Time sent;
};

class SpooledProducerImpl final : public SpooledProducer {
 public:
  SpooledProducerImpl(std::shared_ptr<grpc::Channel> channel, std::unique_ptr<Spool> spool,
                      const SpooledProducerOptions& options)
      : options_(options),
        channel_(std::move(channel)),
        stub_(evlog::v1::ProducerService::NewStub(channel_)),
        admin_(Admin::Create(channel_, {.timeout = options.call_timeout})),
        spool_(std::move(spool)) {
    last_spooled_id_ = spool_->LastId();  // batches of earlier runs are visible to the drain
    appender_ = std::thread([this] { AppendLoop(); });
    drainer_ = std::thread([this] { DrainLoop(); });
  }

  ~SpooledProducerImpl() override { Close(absl::Now()).IgnoreError(); }

  absl::Status Send(const std::string& topic, ProducerRecord record,
                    std::optional<int32_t> partition, Callback done) override;
  absl::Status WaitSpooled(absl::Time deadline) override;
  absl::StatusOr<FlushResult> Flush(absl::Time deadline) override;
  absl::Status WaitUntilDrained(absl::Time deadline) override;
  absl::StatusOr<FlushResult> Close(absl::Time deadline) override;
  SpooledProducerStats Stats() override;
  absl::Status LastDeliveryError() override {
    absl::MutexLock lock(&mu_);
    return last_error_;
  }

 private:
  // --- gathering and spooling (Send, appender thread) ---
  void AppendLoop();
  void MakeReady(const PartitionId& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t BatchMaxBytes();
  int32_t BatchMaxRecords();
  absl::StatusOr<int32_t> PartitionCountOf(const std::string& topic);

  // --- draining (drain thread) ---
  void DrainLoop();
  // Runs one Produce stream from spool id `*resume` until it fails, idles out or the producer
  // stops; sets `*resume` to the first batch to send next. Returns OK, or the failure;
  // `*backoff` says whether to wait before the next stream.
  absl::Status RunStream(uint64_t* resume, bool* backoff);
  absl::Status EnsureServerInfo();
  absl::StatusOr<ProducerIdentity> InitProducer();
  absl::StatusOr<ProducerIdentity> ProducerForBatch(const SpoolBatch& b);
  void Resolved(uint64_t id, int64_t records, bool acked);
  void FireCallbacks(uint64_t id, SendOutcome::State state, const absl::Status& status,
                     int64_t base_offset);
  bool Stopping() {
    absl::MutexLock lock(&mu_);
    return stop_drain_;
  }

  const SpooledProducerOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<evlog::v1::ProducerService::Stub> stub_;
  std::unique_ptr<Admin> admin_;
  std::unique_ptr<Spool> spool_;
  Watchdog watchdog_;

  absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;       // no more Sends
  bool stop_append_ ABSL_GUARDED_BY(mu_) = false;  // appender: spool what is left and exit
  bool stop_drain_ ABSL_GUARDED_BY(mu_) = false;
  std::map<PartitionId, Gathering> gathering_ ABSL_GUARDED_BY(mu_);
  std::deque<Gathering> ready_ ABSL_GUARDED_BY(mu_);
  int64_t flush_requests_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t batches_started_ ABSL_GUARDED_BY(mu_) = 0;  // gatherings begun (wakes the appender)
  // Counters of records sent through this producer (FlushResult) and of all records (Stats).
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t spooled_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t session_acked_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t session_dead_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t acked_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t retried_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dead_records_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dead_batches_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status append_error_ ABSL_GUARDED_BY(mu_);
  absl::Status last_error_ ABSL_GUARDED_BY(mu_);
  // Spool ids of batches spooled by this producer and not yet acknowledged or dead-lettered.
  std::set<uint64_t> session_pending_ ABSL_GUARDED_BY(mu_);
  uint64_t last_spooled_id_ ABSL_GUARDED_BY(mu_) = 0;
  // Bumped on every append and every resolution, to wake the drain and waiters.
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex cb_mu_;
  std::map<uint64_t, PendingCallbacks> callbacks_ ABSL_GUARDED_BY(cb_mu_);

  // Drain-thread state, touched only by the drain thread (and read at construction).
  bool server_info_ = false;
  int32_t max_in_flight_ = 0;
  uint64_t next_request_id_ = 1;
  // (partition, producer id) pairs the server has acknowledged a batch of: until then the
  // producer id may be unknown to the server on that partition, where it accepts ANY sequence;
  // one batch at a time then, so a later batch can never be stored ahead of a refused one.
  std::set<std::pair<PartitionId, int64_t>> confirmed_;

  std::thread appender_;
  std::thread drainer_;
};

// ---------------------------------------------------------------------------------------------
// Send and the appender
// ---------------------------------------------------------------------------------------------

int64_t SpooledProducerImpl::BatchMaxBytes() {
  int64_t cap = options_.batch_max_bytes;
  const CachedServerLimits limits = spool_->Limits();
  if (limits.max_batch_bytes > 0) cap = std::min(cap, limits.max_batch_bytes - kRequestOverhead);
  return std::max<int64_t>(cap, 1024);
}

int32_t SpooledProducerImpl::BatchMaxRecords() {
  int32_t cap = options_.batch_max_records;
  const CachedServerLimits limits = spool_->Limits();
  if (limits.max_batch_records > 0) cap = std::min(cap, limits.max_batch_records);
  return std::max(cap, 1);
}

absl::StatusOr<int32_t> SpooledProducerImpl::PartitionCountOf(const std::string& topic) {
  if (std::optional<int32_t> cached = spool_->PartitionCount(topic)) return *cached;
  absl::StatusOr<TopicDescription> t = admin_->DescribeTopic(topic);
  if (t.ok()) {
    spool_->SetPartitionCount(topic, t->partition_count).IgnoreError();
    return t->partition_count;
  }
  if (absl::IsNotFound(t.status()) || absl::IsInvalidArgument(t.status())) return t.status();
  return absl::UnavailableError(absl::StrCat(
      "cannot route records of topic ", topic,
      ": its partition count is unknown to this spool and the server cannot be asked (",
      t.status().message(), "); name a partition, or start once while the server is reachable"));
}

absl::Status SpooledProducerImpl::Send(const std::string& topic, ProducerRecord record,
                                       std::optional<int32_t> partition, Callback done) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) {
      return absl::FailedPreconditionError("the producer is closed; Send is not allowed");
    }
    if (!append_error_.ok()) return append_error_;
  }
  if (partition.has_value()) {
    if (*partition < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("partition ", *partition, " is negative; partitions are numbered from 0"));
    }
    if (std::optional<int32_t> count = spool_->PartitionCount(topic);
        count.has_value() && *partition >= *count) {
      return absl::OutOfRangeError(absl::StrCat("topic ", topic, " has no partition ", *partition,
                                                "; its partitions are 0..", *count - 1));
    }
  } else {
    absl::StatusOr<int32_t> count = PartitionCountOf(topic);
    if (!count.ok()) return count.status();
    partition = evlog::v1::PartitionForKey(record.key, *count);
  }
  const CachedServerLimits limits = spool_->Limits();
  const int64_t max_record =
      limits.max_record_bytes > 0 ? limits.max_record_bytes : kDefaultMaxRecordBytes;
  if (RecordBytes(record) > max_record) {
    return absl::InvalidArgumentError(absl::StrCat("a record of ", RecordBytes(record),
                                                   " bytes is over the server's limit of ",
                                                   max_record, " bytes"));
  }

  evlog::v1::Record proto;
  if (record.timestamp_ms > 0) proto.set_timestamp_ms(record.timestamp_ms);
  proto.set_key(std::move(record.key));
  proto.set_value(std::move(record.value));
  for (Header& h : record.headers) {
    evlog::v1::Header* ph = proto.add_headers();
    ph->set_key(std::move(h.name));
    ph->set_value(std::move(h.value));
  }
  std::string entry;
  const std::string body = proto.SerializeAsString();
  entry.reserve(body.size() + 6);
  entry.push_back(0x22);  // ProduceRequest field 4 (records), length-delimited
  AppendVarint(&entry, body.size());
  entry.append(body);

  // Room for the record and, conservatively, a batch header of its own; the excess is given
  // back when the batch is spooled (the spool settles reservations exactly).
  const int64_t need =
      static_cast<int64_t>(entry.size()) + spool_format::BatchValueSize(topic.size(), 0);
  const absl::Time deadline = options_.spool.when_full == SpoolFullPolicy::kBlock
                                  ? absl::Now() + options_.block_timeout
                                  : absl::Now();
  if (absl::Status s = spool_->Reserve(need, deadline); !s.ok()) return s;

  const int64_t max_bytes = BatchMaxBytes();
  const int32_t max_records = BatchMaxRecords();
  absl::MutexLock lock(&mu_);
  if (closed_) {
    spool_->Unreserve(need);
    return absl::FailedPreconditionError("the producer is closed; Send is not allowed");
  }
  const PartitionId id{topic, *partition};
  auto it = gathering_.find(id);
  if (it != gathering_.end() &&
      (it->second.count + 1 > max_records ||
       static_cast<int64_t>(it->second.records.size() + entry.size()) > max_bytes)) {
    MakeReady(id);
    it = gathering_.end();
  }
  if (it == gathering_.end()) {
    it = gathering_.emplace(id, Gathering{}).first;
    it->second.topic = topic;
    it->second.partition = *partition;
    it->second.first = absl::Now();
    ++batches_started_;  // the appender recomputes its linger deadline
  }
  Gathering& g = it->second;
  if (done) g.callbacks.emplace_back(g.count, std::move(done));
  g.records.append(entry);
  g.count += 1;
  g.reserved += need;
  ++sent_;
  if (g.count >= max_records || static_cast<int64_t>(g.records.size()) >= max_bytes) {
    MakeReady(id);
  }
  return absl::OkStatus();
}

void SpooledProducerImpl::MakeReady(const PartitionId& id) {
  auto it = gathering_.find(id);
  if (it == gathering_.end()) return;
  ready_.push_back(std::move(it->second));
  gathering_.erase(it);
}

void SpooledProducerImpl::AppendLoop() {
  int64_t seen_flush = 0;  // flush requests served
  while (true) {
    std::vector<Gathering> take;
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        absl::Time oldest = absl::InfiniteFuture();
        for (const auto& [id, g] : gathering_) oldest = std::min(oldest, g.first);
        const bool expired = oldest + options_.linger <= absl::Now();
        if (!ready_.empty() || expired || stop_append_ || flush_requests_ != seen_flush) break;
        const int64_t started = batches_started_;
        auto wake = [this, &seen_flush, started]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return !ready_.empty() || stop_append_ || flush_requests_ != seen_flush ||
                 batches_started_ != started;
        };
        mu_.AwaitWithDeadline(absl::Condition(&wake), oldest == absl::InfiniteFuture()
                                                          ? absl::InfiniteFuture()
                                                          : oldest + options_.linger);
      }
      const bool all = stop_append_ || flush_requests_ != seen_flush;
      seen_flush = flush_requests_;
      const absl::Time now = absl::Now();
      std::vector<PartitionId> expired;
      for (const auto& [id, g] : gathering_) {
        if (all || g.first + options_.linger <= now) expired.push_back(id);
      }
      for (const PartitionId& id : expired) MakeReady(id);
      while (!ready_.empty()) {
        take.push_back(std::move(ready_.front()));
        ready_.pop_front();
      }
      if (take.empty() && stop_append_) return;
      if (take.empty()) {
        // A flush with nothing gathered: it is already satisfied.
        ++generation_;
        continue;
      }
    }

    std::vector<NewSpoolBatch> batches;
    int64_t reserved = 0;
    int64_t records = 0;
    for (Gathering& g : take) {
      reserved += g.reserved;
      records += g.count;
      batches.push_back({g.topic, g.partition, g.count, std::move(g.records)});
    }
    absl::StatusOr<std::vector<AppendedBatch>> appended =
        spool_->AppendAll(std::move(batches), reserved);
    // Callbacks first, then the counters: when WaitSpooled/Flush see a record spooled, its
    // kSpooled callback has run, and its batch becomes visible to the drain (last_spooled_id_)
    // only once its kAcknowledged callback is registered.
    for (size_t i = 0; i < take.size(); ++i) {
      Gathering& g = take[i];
      if (g.callbacks.empty()) continue;
      SendOutcome out;
      out.topic = g.topic;
      out.partition = g.partition;
      if (!appended.ok()) {
        out.state = SendOutcome::State::kFailed;
        out.status = appended.status();
        for (auto& [index, cb] : g.callbacks) cb(out);
        continue;
      }
      out.state = SendOutcome::State::kSpooled;
      for (auto& [index, cb] : g.callbacks) cb(out);
      absl::MutexLock lock(&cb_mu_);
      callbacks_[(*appended)[i].id] = {g.topic, g.partition, std::move(g.callbacks)};
    }
    absl::MutexLock lock(&mu_);
    if (appended.ok()) {
      spooled_ += records;
      for (const AppendedBatch& a : *appended) {
        session_pending_.insert(a.id);
        last_spooled_id_ = std::max(last_spooled_id_, a.id);
      }
    } else {
      failed_ += records;
      if (append_error_.ok()) append_error_ = appended.status();
    }
    ++generation_;
  }
}

absl::Status SpooledProducerImpl::WaitSpooled(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  const int64_t target = sent_;
  ++flush_requests_;
  auto spooled = [this, target]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return spooled_ + failed_ >= target; };
  if (!mu_.AwaitWithDeadline(absl::Condition(&spooled), deadline)) {
    return absl::DeadlineExceededError(absl::StrCat(
        target - spooled_ - failed_,
        " records were not yet written to the spool by the deadline (is the spool full and the "
        "server unreachable?)"));
  }
  return append_error_;
}

absl::StatusOr<FlushResult> SpooledProducerImpl::Flush(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  const int64_t target = sent_;
  ++flush_requests_;
  auto spooled = [this, target]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return spooled_ + failed_ >= target; };
  if (!mu_.AwaitWithDeadline(absl::Condition(&spooled), deadline)) {
    return absl::DeadlineExceededError(
        absl::StrCat(target - spooled_ - failed_,
                     " records were not yet written to the spool by the deadline (is the spool "
                     "full and the server unreachable?)"));
  }
  if (!append_error_.ok()) return append_error_;
  const uint64_t target_id = last_spooled_id_;
  auto delivered = [this, target_id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return session_pending_.empty() || *session_pending_.begin() > target_id;
  };
  mu_.AwaitWithDeadline(absl::Condition(&delivered), deadline);
  FlushResult r;
  r.sent = sent_;
  r.acknowledged = session_acked_;
  r.dead_lettered = session_dead_;
  r.failed = failed_;
  r.spooled = spooled_ - session_acked_ - session_dead_;
  return r;
}

absl::Status SpooledProducerImpl::WaitUntilDrained(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return spool_->Counters().pending_batches == 0 && gathering_.empty() && ready_.empty() &&
           spooled_ + failed_ >= sent_;
  };
  if (mu_.AwaitWithDeadline(absl::Condition(&empty), deadline)) return absl::OkStatus();
  const SpoolCounters c = spool_->Counters();
  return absl::DeadlineExceededError(absl::StrCat(
      c.pending_records, " records in ", c.pending_batches, " batches are still in the spool at ",
      spool_->dir(), " and ", sent_ - spooled_ - failed_, " records are not yet spooled",
      last_error_.ok()
          ? std::string()
          : absl::StrCat("; last delivery error: ", absl::StatusCodeToString(last_error_.code()),
                         ": ", last_error_.message())));
}

absl::StatusOr<FlushResult> SpooledProducerImpl::Close(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_ && stop_drain_ && !appender_.joinable() && !drainer_.joinable()) {
      FlushResult r;
      r.sent = sent_;
      r.acknowledged = session_acked_;
      r.dead_lettered = session_dead_;
      r.failed = failed_;
      r.spooled = spooled_ - session_acked_ - session_dead_;
      return r;
    }
    closed_ = true;
  }
  // Past the deadline the appender still spools everything gathered (its room is reserved),
  // so nothing accepted is left behind in memory.
  Flush(deadline).IgnoreError();
  {
    absl::MutexLock lock(&mu_);
    stop_append_ = true;
  }
  if (appender_.joinable()) appender_.join();
  {
    absl::MutexLock lock(&mu_);
    stop_drain_ = true;
  }
  spool_->Shutdown();
  if (drainer_.joinable()) drainer_.join();
  absl::MutexLock lock(&mu_);
  if (!append_error_.ok()) return append_error_;
  FlushResult r;
  r.sent = sent_;
  r.failed = failed_;
  r.acknowledged = session_acked_;
  r.dead_lettered = session_dead_;
  r.spooled = spooled_ - session_acked_ - session_dead_;
  return r;
}

SpooledProducerStats SpooledProducerImpl::Stats() {
  const SpoolCounters c = spool_->Counters();
  absl::MutexLock lock(&mu_);
  SpooledProducerStats s;
  s.records_sent = sent_;
  s.records_spooled = spooled_;
  s.records_acknowledged = acked_;
  s.records_retried = retried_;
  s.records_dead_lettered = dead_records_;
  s.batches_dead_lettered = dead_batches_;
  s.spool_bytes = c.bytes;
  s.spool_records = c.pending_records;
  s.spool_batches = c.pending_batches;
  s.reconnects = reconnects_;
  return s;
}

// ---------------------------------------------------------------------------------------------
// The drain
// ---------------------------------------------------------------------------------------------

void SpooledProducerImpl::FireCallbacks(uint64_t id, SendOutcome::State state,
                                        const absl::Status& status, int64_t base_offset) {
  PendingCallbacks pending;
  {
    absl::MutexLock lock(&cb_mu_);
    auto it = callbacks_.find(id);
    if (it == callbacks_.end()) return;
    pending = std::move(it->second);
    callbacks_.erase(it);
  }
  SendOutcome out;
  out.state = state;
  out.status = status;
  out.topic = pending.topic;
  out.partition = pending.partition;
  for (auto& [index, cb] : pending.callbacks) {
    out.offset = base_offset < 0 ? -1 : base_offset + index;
    cb(out);
  }
}

void SpooledProducerImpl::Resolved(uint64_t id, int64_t records, bool acked) {
  absl::MutexLock lock(&mu_);
  const bool mine = session_pending_.erase(id) > 0;
  if (acked) {
    acked_ += records;
    if (mine) session_acked_ += records;
  } else {
    dead_records_ += records;
    dead_batches_ += 1;
    if (mine) session_dead_ += records;
  }
  ++generation_;
}

absl::Status SpooledProducerImpl::EnsureServerInfo() {
  if (server_info_) return absl::OkStatus();
  absl::StatusOr<ServerDescription> d = admin_->DescribeServer();
  if (!d.ok()) return d.status();
  spool_->SetLimits({d->max_record_bytes, d->max_batch_bytes, d->max_batch_records}).IgnoreError();
  max_in_flight_ = options_.max_in_flight;
  if (d->max_inflight_per_stream > 0) {
    max_in_flight_ = std::min(max_in_flight_, d->max_inflight_per_stream);
  }
  max_in_flight_ = std::max(max_in_flight_, 1);
  server_info_ = true;
  return absl::OkStatus();
}

absl::StatusOr<ProducerIdentity> SpooledProducerImpl::InitProducer() {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, options_.call_timeout);
  evlog::v1::InitProducerResponse resp;
  grpc::Status gs = stub_->InitProducer(&ctx, evlog::v1::InitProducerRequest(), &resp);
  if (!gs.ok()) return FromGrpcStatus(gs, &ctx);
  return ProducerIdentity{resp.producer_id(), resp.producer_epoch()};
}

absl::StatusOr<ProducerIdentity> SpooledProducerImpl::ProducerForBatch(const SpoolBatch& b) {
  uint64_t from = 0;
  ProducerIdentity p = spool_->ProducerFor(b.topic, b.partition, b.id, &from);
  if (p.producer_id != 0) return p;
  absl::StatusOr<ProducerIdentity> fresh = InitProducer();
  if (!fresh.ok()) return fresh.status();
  // Persisted (synced) before the first batch is sent under it, so a restart reuses it.
  absl::Status s = from == 0 ? spool_->SetProducer(*fresh)
                             : spool_->ResolveOverride(b.topic, b.partition, from, *fresh);
  if (!s.ok()) return s;
  spdlog::info("spool {}: producer id {} for {}", spool_->dir(), fresh->producer_id,
               from == 0 ? std::string("the spool")
                         : absl::StrCat(b.topic, "/", b.partition, " from spool id ", from));
  return *fresh;
}

void SpooledProducerImpl::DrainLoop() {
  Backoff backoff(options_.backoff);
  uint64_t resume = 0;
  bool failing = false;
  while (!Stopping()) {
    const uint64_t last = spool_->LastId();
    if (spool_->Counters().pending_batches == 0) {
      // Nothing to deliver: wait for an append (or stop).
      spool_->WaitForAppend(last, absl::Now() + absl::Seconds(1));
      continue;
    }
    bool wait = true;
    absl::Status s = RunStream(&resume, &wait);
    if (Stopping()) break;
    if (s.ok()) {
      if (failing) spdlog::info("spool {}: delivering again", spool_->dir());
      failing = false;
      backoff.Reset();
      absl::MutexLock lock(&mu_);
      last_error_ = absl::OkStatus();
      continue;
    }
    {
      absl::MutexLock lock(&mu_);
      ++reconnects_;
      if (wait) last_error_ = s;
    }
    if (!wait) continue;
    const absl::Duration delay = backoff.NextDelay(s);
    if (!failing) {
      spdlog::warn("spool {}: cannot deliver ({}: {}); {} records wait in the spool; retrying",
                   spool_->dir(), absl::StatusCodeToString(s.code()), std::string(s.message()),
                   spool_->Counters().pending_records);
    }
    failing = true;
    absl::MutexLock lock(&mu_);
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_drain_; };
    mu_.AwaitWithDeadline(absl::Condition(&stop), absl::Now() + delay);
  }
}

absl::Status SpooledProducerImpl::RunStream(uint64_t* resume, bool* backoff) {
  *backoff = true;
  if (absl::Status s = EnsureServerInfo(); !s.ok()) return s;
  if (spool_->Producer().producer_id == 0) {
    SpoolBatch none;
    if (auto p = ProducerForBatch(none); !p.ok()) return p.status();
  }

  grpc::ClientContext ctx;
  std::unique_ptr<ProduceStream> stream = stub_->Produce(&ctx);
  const uint64_t watch = watchdog_.Watch(&ctx, absl::InfiniteFuture());

  // The reader thread hands responses over through `rmu`.
  absl::Mutex rmu;
  std::deque<evlog::v1::ProduceResponse> responses;
  bool read_done = false;
  std::thread reader([&] {
    evlog::v1::ProduceResponse resp;
    while (stream->Read(&resp)) {
      absl::MutexLock lock(&rmu);
      responses.push_back(std::move(resp));
    }
    absl::MutexLock lock(&rmu);
    read_done = true;
  });

  std::deque<InFlight> in_flight;
  std::map<PartitionId, int> per_partition;
  std::set<PartitionId> failed;  // a batch of it failed on this stream: later ones wait
  std::deque<SpoolBatch> buffer;
  uint64_t cursor = *resume;
  uint64_t first_unresolved = UINT64_MAX;  // lowest id that must be sent again
  bool restart = false;
  bool stream_broken = false;
  absl::Status status;  // why the stream ends
  absl::Time idle_since = absl::Now();

  auto fail = [&](const absl::Status& s, bool wait) {
    if (!restart || status.ok()) status = s;
    if (!wait && !restart) *backoff = false;
    if (wait) *backoff = true;
    restart = true;
  };

  while (true) {
    int64_t gen;
    {
      absl::MutexLock lock(&mu_);
      gen = generation_;
    }
    // 1. Outcomes of answered batches, in order.
    std::deque<evlog::v1::ProduceResponse> got;
    bool done = false;
    {
      absl::MutexLock lock(&rmu);
      got.swap(responses);
      done = read_done;
    }
    std::vector<SpoolBatchRef> acks;
    std::vector<std::pair<uint64_t, int64_t>> ack_offsets;
    for (const evlog::v1::ProduceResponse& resp : got) {
      if (in_flight.empty() || in_flight.front().request_id != resp.request_id()) {
        fail(absl::InternalError(
                 absl::StrCat("the server answered request ", resp.request_id(), " out of order")),
             true);
        continue;
      }
      InFlight f = std::move(in_flight.front());
      in_flight.pop_front();
      const PartitionId pid{f.batch.topic, f.batch.partition};
      --per_partition[pid];
      const SpoolBatchRef ref{f.batch.id, f.batch.record_count, f.batch.bytes};
      absl::Status outcome = resp.has_error() ? FromError(resp.error()) : absl::OkStatus();
      if (outcome.ok() || absl::IsAlreadyExists(outcome)) {
        if (failed.count(pid) > 0 && outcome.ok() && !resp.duplicate()) {
          // Cannot happen with the one-at-a-time rule for unconfirmed producer ids; if it did,
          // the record order of this partition would differ from the spool's. Say so.
          spdlog::error("spool {}: {}/{} batch {} was stored after an earlier batch failed",
                        spool_->dir(), pid.first, pid.second, f.batch.id);
        }
        confirmed_.insert({pid, f.producer_id});
        acks.push_back(ref);
        ack_offsets.emplace_back(f.batch.id, outcome.ok() ? resp.base_offset() : -1);
        continue;
      }
      const bool gap = IsSequenceGap(outcome);
      if (!IsPermanent(outcome) || (gap && failed.count(pid) > 0)) {
        failed.insert(pid);
        first_unresolved = std::min(first_unresolved, f.batch.id);
        {
          absl::MutexLock lock(&mu_);
          retried_ += f.batch.record_count;
        }
        fail(outcome, !gap);
        continue;
      }
      // Refused for good: keep it on disk, never drop it silently, and move the partition's
      // later batches to a fresh producer id.
      spdlog::error(
          "spool {}: the server refused batch {} ({} records for {}/{}, sequence {}) for good: "
          "{}: {}; it is kept in the spool's dead letters (see `evlog spool status {}`)",
          spool_->dir(), f.batch.id, f.batch.record_count, pid.first, pid.second,
          f.batch.base_sequence, absl::StatusCodeToString(outcome.code()),
          std::string(outcome.message()), spool_->dir());
      failed.insert(pid);
      if (absl::Status s = spool_->DeadLetter(ref, pid.first, pid.second, outcome, f.producer_id);
          !s.ok()) {
        first_unresolved = std::min(first_unresolved, f.batch.id);
        fail(s, true);
        continue;
      }
      Resolved(f.batch.id, f.batch.record_count, /*acked=*/false);
      FireCallbacks(f.batch.id, SendOutcome::State::kDeadLettered, outcome, -1);
      fail(absl::AbortedError(absl::StrCat("batch ", f.batch.id, " was dead-lettered")), false);
    }
    if (!acks.empty()) {
      if (absl::Status s = spool_->Ack(acks); !s.ok()) {
        spdlog::error("spool {}: {}", spool_->dir(), std::string(s.message()));
      }
      for (size_t i = 0; i < acks.size(); ++i) {
        Resolved(acks[i].id, acks[i].record_count, /*acked=*/true);
        FireCallbacks(acks[i].id, SendOutcome::State::kAcknowledged, absl::OkStatus(),
                      ack_offsets[i].second);
      }
      idle_since = absl::Now();
    }
    watchdog_.Arm(watch, in_flight.empty() ? absl::InfiniteFuture()
                                           : in_flight.front().sent + options_.ack_timeout);
    if (done) {
      stream_broken = true;
      break;
    }
    if (Stopping()) break;
    if (restart && in_flight.empty()) break;

    // 2. Send the next batch, in spool order.
    bool sent_one = false;
    if (!restart && static_cast<int>(in_flight.size()) < max_in_flight_) {
      if (buffer.empty()) {
        uint64_t visible;
        {
          absl::MutexLock lock(&mu_);
          visible = last_spooled_id_;
        }
        absl::StatusOr<std::vector<SpoolBatch>> more =
            cursor <= visible ? spool_->Read(cursor, kReadAheadBatches, kReadAheadBytes)
                              : std::vector<SpoolBatch>{};
        if (!more.ok()) {
          fail(more.status(), true);
          continue;
        }
        for (SpoolBatch& b : *more) {
          if (b.id > visible) break;  // its callbacks are still being registered
          buffer.push_back(std::move(b));
        }
      }
      if (!buffer.empty()) {
        SpoolBatch& b = buffer.front();
        const PartitionId pid{b.topic, b.partition};
        if (!b.integrity.ok()) {
          spdlog::error("spool {}: batch {} is damaged ({}); it is kept in the dead letters",
                        spool_->dir(), b.id, std::string(b.integrity.message()));
          if (spool_->DeadLetter({b.id, 0, b.bytes}, "", 0, b.integrity, 0).ok()) {
            Resolved(b.id, 0, /*acked=*/false);
          }
          cursor = b.id + 1;
          buffer.pop_front();
          continue;
        }
        absl::StatusOr<ProducerIdentity> producer = ProducerForBatch(b);
        if (!producer.ok()) {
          fail(producer.status(), true);
          continue;
        }
        const int limit =
            confirmed_.count({pid, producer->producer_id}) > 0 ? kMaxInFlightPerPartition : 1;
        if (per_partition[pid] < limit) {
          evlog::v1::ProduceRequest req;
          if (!req.ParseFromString(b.records)) {
            b.integrity = absl::DataLossError("its records do not parse");
            continue;
          }
          req.set_request_id(next_request_id_++);
          req.set_topic(b.topic);
          req.set_partition(b.partition);
          req.set_producer_id(producer->producer_id);
          req.set_producer_epoch(producer->epoch);
          req.set_base_sequence(b.base_sequence);
          InFlight f;
          f.request_id = req.request_id();
          f.producer_id = producer->producer_id;
          f.sent = absl::Now();
          f.batch = std::move(b);
          f.batch.records.clear();
          buffer.pop_front();
          cursor = f.batch.id + 1;
          ++per_partition[pid];
          in_flight.push_back(std::move(f));
          watchdog_.Arm(watch, in_flight.front().sent + options_.ack_timeout);
          if (!stream->Write(req)) {
            // The stream broke; the reader sees its end and the loop restarts it.
            fail(absl::UnavailableError("the produce stream broke while sending"), true);
          }
          sent_one = true;
          idle_since = absl::Now();
        }
      }
    }
    if (sent_one) continue;

    // 3. Nothing to send now: wait for an answer, an append, or the stream's end.
    if (in_flight.empty() && buffer.empty() && !restart &&
        absl::Now() - idle_since > kIdleStreamTimeout) {
      break;  // idle: close the stream cleanly
    }
    const absl::Time until = absl::Now() + absl::Milliseconds(in_flight.empty() ? 200 : 50);
    {
      absl::MutexLock lock(&rmu);
      auto ready = [&]()
                       ABSL_SHARED_LOCKS_REQUIRED(rmu) { return !responses.empty() || read_done; };
      if (!in_flight.empty()) {
        rmu.AwaitWithDeadline(absl::Condition(&ready), until);
        continue;
      }
    }
    // Waiting for appends only: wake on the producer's generation (appends from this process)
    // or on the spool's last id.
    absl::MutexLock lock(&mu_);
    auto woke = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return generation_ != gen || stop_drain_;
    };
    mu_.AwaitWithDeadline(absl::Condition(&woke), until);
  }

  // End the stream: cancel unless it already ended, then collect its status.
  if (!stream_broken) {
    if (in_flight.empty() && !restart && !Stopping()) {
      stream->WritesDone();
    } else {
      ctx.TryCancel();
    }
  }
  reader.join();
  const grpc::Status finish = stream->Finish();
  const bool overdue = watchdog_.Unwatch(watch);
  for (const InFlight& f : in_flight) {
    first_unresolved = std::min(first_unresolved, f.batch.id);
    absl::MutexLock lock(&mu_);
    retried_ += f.batch.record_count;
  }
  *resume = std::min(first_unresolved, cursor);
  absl::Status end = FromGrpcStatus(finish, &ctx);
  if (overdue) {
    end = absl::DeadlineExceededError(absl::StrCat("the server did not answer a batch within ",
                                                   absl::FormatDuration(options_.ack_timeout),
                                                   "; the connection may be blackholed"));
  }
  if (restart) return status;
  if (stream_broken || !in_flight.empty()) {
    *backoff = true;
    return end.ok() ? absl::UnavailableError("the produce stream ended with batches unanswered")
                    : end;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<SpooledProducer>> SpooledProducer::Open(
    const std::string& target, const std::string& spool_dir,
    const SpooledProducerOptions& options) {
  return Open(CreateEvlogChannel(target), spool_dir, options);
}

absl::StatusOr<std::unique_ptr<SpooledProducer>> SpooledProducer::Open(
    std::shared_ptr<grpc::Channel> channel, const std::string& spool_dir,
    const SpooledProducerOptions& options) {
  absl::StatusOr<std::unique_ptr<Spool>> spool = Spool::Open(spool_dir, options.spool);
  if (!spool.ok()) return spool.status();
  return std::unique_ptr<SpooledProducer>(
      new SpooledProducerImpl(std::move(channel), std::move(*spool), options));
}

}  // namespace evlog::client
