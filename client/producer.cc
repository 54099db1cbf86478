#include "client/producer.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/admin.h"
#include "client/backoff.h"
#include "client/channel.h"
#include "client/grpc_status.h"
#include "client/watchdog.h"
#include "evlog/v1/evlog.grpc.pb.h"
#include "evlog/v1/partitioner.h"
#include "storage/batch_builder.h"
#include "storage/batch_format.h"

namespace evlog::client {
namespace {

using ProduceStream =
    grpc::ClientReaderWriter<evlog::v1::ProduceRequest, evlog::v1::ProduceResponse>;

// What a record's framing in the batch format can take beyond the estimate of
// EncodedRecordSize(delta 0, index 0): a longer offset delta (<= 5 bytes) and timestamp delta
// (<= 10 bytes) varint.
constexpr int64_t kFramingSlack = 13;
// The most bytes reserved up front for a new batch's buffer (see Send).
constexpr size_t kMaxBatchReserve = 256 << 10;
// The server remembers the last 5 batches of each idempotent producer per partition
// (storage/producer_state.h): with more in flight, a resend could fall out of that window and be
// refused as an old duplicate instead of answered with its offsets.
constexpr int32_t kMaxInFlightPerPartition = 5;

bool IsSequenceGap(const absl::Status& status) {
  return absl::IsFailedPrecondition(status) && absl::StrContains(status.message(), "sequence gap");
}

// A record's size as the server limits it: key + value + header names and values.
int64_t RecordBytes(const ProducerRecord& r) {
  int64_t size = static_cast<int64_t>(r.key.size() + r.value.size());
  for (const Header& h : r.headers) size += static_cast<int64_t>(h.name.size() + h.value.size());
  return size;
}

struct Domain;

// A batch of records for one partition, from its first Send to its outcome. Its records are
// encoded as they are sent, in the storage format (storage/batch_format.h), straight into
// request.batch: the request is the batch, and the server stores its bytes unchanged. The
// header and CRC are written when the batch is first sent, and again only if a resend carries
// other producer fields (a rebind under a new producer id).
struct Batch {
  Batch(Domain* domain, const std::string& topic, int32_t partition, size_t reserve)
      : domain(domain), builder(request.mutable_batch(), reserve) {
    request.set_topic(topic);
    request.set_partition(partition);
  }
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;

  int32_t records() const { return builder.record_count(); }
  // Bytes of the encoded batch, header included.
  int64_t bytes() const { return static_cast<int64_t>(builder.size()); }

  Domain* const domain;  // its (topic, partition); domains are never freed
  evlog::v1::ProduceRequest request;
  storage::BatchBuilder builder;  // writes request.batch; declared after `request`
  std::vector<std::pair<int32_t, Producer::Callback>> callbacks;  // record index -> callback
  // The producer fields the header and CRC were last written with (unset: never).
  std::optional<std::tuple<int64_t, int16_t, int32_t>> stamped;
  int64_t buffered = 0;   // bytes its records count in the producer's buffer
  int64_t first_seq = 0;  // sequence number of its first record (for Flush)
  absl::Time created;     // when its first record was added (linger)
  absl::Time delivery_deadline;
  // Idempotence: the producer id and sequence the batch was first sent with. A batch keeps them
  // across resends (that is what lets the server recognise a retry) until a rebind.
  int64_t producer_id = 0;
  int16_t producer_epoch = 0;
  int32_t base_sequence = -1;  // -1: not yet sent
  // True from each send until the server answered it: a broken stream leaves the outcome
  // unknown (it may have been stored). An answer, success or refusal, is definitive.
  bool maybe_stored = false;
  bool gap = false;  // its last answer was "sequence gap"
};

// Per (topic, partition): the batch being filled and the retry state that keeps order.
struct Domain {
  Domain(std::string topic, int32_t partition) : topic(std::move(topic)), partition(partition) {}
  const std::string topic;
  const int32_t partition;
  std::shared_ptr<Batch> open;
  // Size and record count of the last batch sealed here, to size the next one's buffers up
  // front instead of growing them record by record.
  size_t last_bytes = 0;
  size_t last_records = 0;
  int in_flight = 0;
  // Set when a batch was refused with RESOURCE_EXHAUSTED: no new batch of this partition is
  // sent until every one in flight has its answer; then the refused ones are resent in order,
  // unless a later one was stored meanwhile (`stored_after_failure`).
  bool draining = false;
  bool stored_after_failure = false;
  std::vector<std::shared_ptr<Batch>> retry;
  absl::Status retry_status;
  absl::Time resume_at = absl::InfinitePast();
  Backoff backoff;
  // Idempotence: the producer id the partition's new batches are sent with, and the sequence
  // of the next record. needs_producer_id: get a fresh id before sending again (the server no
  // longer continues the old id's sequence: a batch before was refused for good, or the
  // sequence space is used up).
  int64_t producer_id = 0;
  int16_t producer_epoch = 0;
  int32_t next_sequence = 0;
  bool needs_producer_id = false;
  // Whether the server has stored a batch of this partition under producer_id. Until then only
  // one batch is in flight: the server lets an id it does not know on a partition start at any
  // sequence, so a second batch could be stored ahead of a refused first one.
  bool confirmed = false;
};

// How many batches of `domain` may be in flight (idempotent producer).
int32_t InFlightLimit(const Domain& domain) {
  return domain.confirmed ? kMaxInFlightPerPartition : 1;
}

// One Produce stream: its call, and the thread reading its responses.
struct Session {
  grpc::ClientContext context;
  std::unique_ptr<ProduceStream> stream;
  std::thread receiver;
  uint64_t watch = 0;
  bool read_done = false;  // guarded by ProducerImpl::mu_
};

struct InFlight {
  std::shared_ptr<Batch> batch;
  absl::Time ack_deadline;
};

// A finished batch whose callbacks are still to run (outside the lock).
struct Outcome {
  std::shared_ptr<Batch> batch;
  absl::Status status;
  int64_t base_offset = 0;
  int32_t partition = 0;
};

class ProducerImpl final : public Producer {
 public:
  ProducerImpl(std::shared_ptr<grpc::Channel> channel, const ProducerOptions& options)
      : channel_(std::move(channel)),
        stub_(evlog::v1::ProducerService::NewStub(channel_)),
        admin_(Admin::Create(channel_, {.timeout = options.call_timeout})),
        options_(options) {
    sender_ = std::thread([this] { SenderLoop(); });
  }

  ~ProducerImpl() override {
    Close(absl::Now() + options_.ack_timeout).IgnoreError();
    sender_.join();
  }

  absl::Status Send(const std::string& topic, ProducerRecord record,
                    std::optional<int32_t> partition, Callback done) override {
    if (absl::Status s = EnsureConfigured(); !s.ok()) return s;
    int32_t p = 0;
    if (partition.has_value()) {
      p = *partition;
    } else {
      absl::StatusOr<int32_t> count = PartitionCount(topic);
      if (!count.ok()) return count.status();
      p = evlog::v1::PartitionForKey(record.key, *count);
    }
    // The client's clock stamps records the caller did not: the server stores a batch's
    // timestamps as they are (evlog.proto, ProduceRequest.batch).
    const int64_t timestamp_ms =
        record.timestamp_ms > 0 ? record.timestamp_ms : absl::GetCurrentTimeNanos() / 1000000;
    std::vector<storage::BatchBuilder::Header> headers;
    if (!record.headers.empty()) {
      headers.reserve(record.headers.size());
      for (const Header& h : record.headers) headers.emplace_back(h.name, h.value);
    }
    // An upper bound of the bytes the record takes in the batch (checked before adding it).
    const int64_t size = static_cast<int64_t>(storage::BatchBuilder::EncodedRecordSize(
                             0, 0, record.key, record.value, headers)) +
                         kFramingSlack;

    absl::MutexLock lock(&mu_);
    if (closing_) return absl::FailedPreconditionError("the producer is closed");
    // Refused here rather than by the server: an oversized message could fail the whole
    // stream, and with it the other batches in flight.
    if (const int64_t record_bytes = RecordBytes(record); record_bytes > max_record_bytes_) {
      return absl::InvalidArgumentError(
          absl::StrCat("a record of ", record_bytes,
                       " bytes (key + value + headers) is over the server's limit of ",
                       max_record_bytes_, " bytes (evlogd --max-record-bytes)"));
    }
    if (buffered_bytes_ > 0 && buffered_bytes_ + size > options_.max_buffered_bytes) {
      const absl::Time deadline = absl::Now() + options_.delivery_timeout;
      auto room = [this, size] {
        return closing_ || buffered_bytes_ == 0 ||
               buffered_bytes_ + size <= options_.max_buffered_bytes;
      };
      if (!mu_.AwaitWithDeadline(absl::Condition(&room), deadline)) {
        return absl::ResourceExhaustedError(absl::StrCat(
            "the producer's buffer (", options_.max_buffered_bytes, " bytes) stayed full for ",
            absl::FormatDuration(options_.delivery_timeout),
            "; the server is not acknowledging fast enough"));
      }
      if (closing_) return absl::FailedPreconditionError("the producer is closed");
    }
    Domain& domain = FindDomain(topic, p);
    if (domain.open != nullptr && (domain.open->bytes() + size > batch_max_bytes_ ||
                                   domain.open->records() >= batch_max_records_)) {
      Seal(domain);
    }
    if (domain.open == nullptr) {
      // Sized like the partition's last batch, so a steady stream fills it without regrowing;
      // capped, so that a burst over many partitions followed by a trickle does not keep a
      // large buffer per partition (beyond the cap the buffer grows geometrically).
      const size_t reserve =
          std::min<size_t>({static_cast<size_t>(batch_max_bytes_),
                            std::max<size_t>(domain.last_bytes, 4096), kMaxBatchReserve});
      auto batch = std::make_shared<Batch>(&domain, topic, p, reserve);
      batch->callbacks.reserve(domain.last_records);  // <= batch_max_records
      batch->first_seq = next_seq_;
      batch->created = absl::Now();
      batch->delivery_deadline = batch->created + options_.delivery_timeout;
      pending_seqs_.insert(batch->first_seq);
      domain.open = std::move(batch);
      cv_.Signal();  // the sender schedules its linger
    }
    Batch& batch = *domain.open;
    const int64_t before = batch.bytes();
    batch.builder.Add(timestamp_ms, record.key, record.value, headers);
    const int64_t added = batch.bytes() - before;
    if (done != nullptr) batch.callbacks.emplace_back(batch.records() - 1, std::move(done));
    batch.buffered += added;
    buffered_bytes_ += added;
    ++next_seq_;
    ++stats_.records_sent;
    if (batch.bytes() >= batch_max_bytes_ || batch.records() >= batch_max_records_) {
      Seal(domain);
    }
    return absl::OkStatus();
  }

  absl::Status Flush(absl::Time deadline) override {
    absl::MutexLock lock(&mu_);
    const int64_t flush_point = next_seq_;
    for (auto& [key, domain] : domains_) {
      if (domain->open != nullptr) Seal(*domain);
    }
    auto flushed = [this, flush_point] {
      return pending_seqs_.empty() || *pending_seqs_.begin() >= flush_point;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&flushed), deadline)) {
      return absl::DeadlineExceededError(
          "the server did not acknowledge every record before the flush deadline");
    }
    absl::Status result;
    for (auto it = unreported_errors_.begin(); it != unreported_errors_.end();) {
      if (it->first < flush_point) {
        if (result.ok()) result = it->second;
        it = unreported_errors_.erase(it);
      } else {
        ++it;
      }
    }
    return result;
  }

  absl::Status FirstError() override {
    absl::MutexLock lock(&mu_);
    return first_error_;
  }

  absl::Status Close(absl::Time deadline) override {
    absl::Status flushed = Flush(deadline);
    absl::MutexLock lock(&mu_);
    if (!closing_) {
      closing_ = true;
      cv_.SignalAll();
    }
    if (!flushed.ok() && absl::IsDeadlineExceeded(flushed)) {
      // Give up on what is left: the sender cancels the stream and fails the rest.
      abort_ = true;
      cv_.SignalAll();
    }
    return flushed;
  }

  ProducerStats Stats() override {
    absl::MutexLock lock(&mu_);
    return stats_;
  }

 private:
  // Fetches the server's limits once and fits the batch options within them.
  absl::Status EnsureConfigured() ABSL_LOCKS_EXCLUDED(mu_) {
    // Once configured, Send skips this lock (the settings below are read under mu_ later).
    if (configured_once_.load(std::memory_order_acquire)) return absl::OkStatus();
    {
      absl::MutexLock lock(&mu_);
      if (configured_) return absl::OkStatus();
    }
    absl::StatusOr<ServerDescription> server = admin_->DescribeServer();
    if (!server.ok() && !absl::IsUnimplemented(server.status())) return server.status();
    absl::MutexLock lock(&mu_);
    batch_max_bytes_ = std::max<int64_t>(1, options_.batch_max_bytes);
    batch_max_records_ = std::max<int32_t>(1, options_.batch_max_records);
    max_in_flight_ = std::max<int32_t>(1, options_.max_in_flight);
    if (server.ok()) {
      if (server->max_batch_bytes > 0) {
        batch_max_bytes_ = std::min(batch_max_bytes_, server->max_batch_bytes);
      }
      if (server->max_batch_records > 0) {
        batch_max_records_ = std::min(batch_max_records_, server->max_batch_records);
      }
      if (server->max_record_bytes > 0) max_record_bytes_ = server->max_record_bytes;
      if (server->max_inflight_per_stream > 0) {
        max_in_flight_ = std::min(max_in_flight_, server->max_inflight_per_stream);
      }
    }
    // Idempotence needs InitProducer (every evlogd since v1 has it); ids are fetched by the
    // sender, per partition, when a batch is first sent.
    idempotent_ = options_.idempotent;
    configured_ = true;
    configured_once_.store(true, std::memory_order_release);
    return absl::OkStatus();
  }

  absl::StatusOr<int32_t> PartitionCount(const std::string& topic) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      auto it = partition_counts_.find(topic);
      if (it != partition_counts_.end()) return it->second;
    }
    absl::StatusOr<TopicDescription> d = admin_->DescribeTopic(topic);
    if (!d.ok()) return d.status();
    if (d->partition_count < 1) {
      return absl::InternalError(
          absl::StrCat("the server describes topic ", topic, " with no partitions"));
    }
    absl::MutexLock lock(&mu_);
    partition_counts_[topic] = d->partition_count;
    return d->partition_count;
  }

  // Moves the domain's open batch to the send queue.
  void Seal(Domain& domain) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    domain.last_bytes = static_cast<size_t>(domain.open->bytes());
    domain.last_records = static_cast<size_t>(domain.open->records());
    ready_.push_back(std::move(domain.open));
    domain.open = nullptr;
    cv_.Signal();
  }

  Domain& DomainOf(const Batch& batch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return *batch.domain; }

  // The domain of (topic, partition), created on first use. A one-entry cache spares the map
  // lookup (and the key's string copy) when a caller keeps sending to one partition.
  Domain& FindDomain(const std::string& topic, int32_t partition)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (last_domain_ != nullptr && last_domain_->partition == partition &&
        last_domain_->topic == topic) {
      return *last_domain_;
    }
    auto& slot = domains_[std::make_pair(topic, partition)];
    if (slot == nullptr) slot = std::make_unique<Domain>(topic, partition);
    last_domain_ = slot.get();
    return *slot;
  }

  // Writes the batch's header and CRC with the producer fields it is sent with, unless they
  // were already written with these. Called by the sender thread outside mu_: a batch taken off
  // ready_ is touched by no other thread until its answer.
  static void StampBatch(Batch& batch, bool idempotent) {
    storage::ProducerInfo producer;  // -1 everywhere: not idempotent
    if (idempotent) {
      producer = {.producer_id = batch.producer_id,
                  .producer_epoch = batch.producer_epoch,
                  .base_sequence = batch.base_sequence};
    }
    const auto fields =
        std::make_tuple(producer.producer_id, producer.producer_epoch, producer.base_sequence);
    if (batch.stamped == fields) return;
    batch.builder.Finish(producer, /*leader_epoch=*/0);
    batch.stamped = fields;
  }

  // Records a batch's outcome; callbacks run later in RunOutcomes.
  void Complete(std::shared_ptr<Batch> batch, absl::Status status, int64_t base_offset,
                int32_t partition, std::vector<Outcome>& outcomes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const int64_t n = batch->records();
    if (status.ok()) {
      stats_.records_acknowledged += n;
    } else {
      stats_.records_failed += n;
      if (first_error_.ok()) first_error_ = status;
      if (unreported_errors_.size() < 1000) {
        unreported_errors_.emplace(batch->first_seq, status);
      }
    }
    buffered_bytes_ -= batch->buffered;
    // pending_seqs_ keeps the batch until its callbacks ran (RunOutcomes), so that Flush
    // returns only after every outcome was delivered.
    outcomes.push_back({std::move(batch), std::move(status), base_offset, partition});
  }

  // Runs the callbacks of finished batches, then lets Flush see them finished.
  void RunOutcomes(std::vector<Outcome>& outcomes) ABSL_LOCKS_EXCLUDED(mu_) {
    if (outcomes.empty()) return;
    for (Outcome& o : outcomes) {
      for (auto& [index, callback] : o.batch->callbacks) {
        if (o.status.ok()) {
          callback(RecordMetadata{o.partition, o.base_offset + index});
        } else {
          callback(o.status);
        }
      }
    }
    absl::MutexLock lock(&mu_);
    for (Outcome& o : outcomes) pending_seqs_.erase(o.batch->first_seq);
    outcomes.clear();
    cv_.SignalAll();
  }

  // After a refusal or a broken stream, once the partition has nothing in flight: resend or
  // fail.
  void ResolveDrain(Domain& domain, std::vector<Outcome>& outcomes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!domain.draining || domain.in_flight > 0) return;
    if (idempotent_) {
      // Resend in sequence order under the same ids: the server stores each batch once.
      std::sort(domain.retry.begin(), domain.retry.end(),
                [](const auto& a, const auto& b) { return a->base_sequence < b->base_sequence; });
      // The first batch to resend was refused as a gap, with nothing before it pending: the
      // server's sequence for this producer id stopped before it (an earlier batch failed for
      // good or timed out unstored, or its state expired). When no batch may have been stored,
      // none of them ever will be under the old id: renumber them under a fresh producer id.
      const bool rebind = !domain.retry.empty() && domain.retry.front()->gap &&
                          std::none_of(domain.retry.begin(), domain.retry.end(),
                                       [](const auto& b) { return b->maybe_stored; });
      if (rebind) {
        domain.needs_producer_id = true;
        for (auto& b : domain.retry) b->base_sequence = -1;
      }
      domain.resume_at =
          rebind ? absl::Now() : absl::Now() + domain.backoff.NextDelay(domain.retry_status);
      for (auto it = domain.retry.rbegin(); it != domain.retry.rend(); ++it) {
        stats_.records_retried += (*it)->records();
        ++stats_.batches_retried;
        ready_.push_front(std::move(*it));
      }
      domain.retry.clear();
      domain.draining = false;
      domain.stored_after_failure = false;
      return;
    }
    if (domain.stored_after_failure) {
      absl::Status s(domain.retry_status.code(),
                     absl::StrCat(domain.retry_status.message(),
                                  " (not resent: a later batch of the same partition was "
                                  "already stored, and resending would break the order)"));
      for (auto& b : domain.retry) Complete(std::move(b), s, 0, 0, outcomes);
    } else {
      domain.resume_at = absl::Now() + domain.backoff.NextDelay(domain.retry_status);
      for (auto it = domain.retry.rbegin(); it != domain.retry.rend(); ++it) {
        ready_.push_front(std::move(*it));
        ++stats_.batches_retried;
      }
    }
    domain.retry.clear();
    domain.draining = false;
    domain.stored_after_failure = false;
  }

  void HandleResponse(const evlog::v1::ProduceResponse& response, std::vector<Outcome>& outcomes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = in_flight_.find(response.request_id());
    if (it == in_flight_.end()) return;  // not ours (never happens with a correct server)
    std::shared_ptr<Batch> batch = std::move(it->second.batch);
    in_flight_.erase(it);
    Domain& domain = DomainOf(*batch);
    --domain.in_flight;
    batch->maybe_stored = false;
    batch->gap = false;
    if (!response.has_error()) {
      if (domain.draining) domain.stored_after_failure = true;
      if (batch->producer_id == domain.producer_id) domain.confirmed = true;
      domain.backoff.Reset();
      Complete(std::move(batch), absl::OkStatus(), response.base_offset(), response.partition(),
               outcomes);
    } else {
      const evlog::v1::Error& e = response.error();
      absl::Status status(static_cast<absl::StatusCode>(e.code()), e.message());
      if (status.ok()) status = absl::InternalError("the server sent an error with code OK");
      if (e.retry_after_ms() > 0) {
        status.SetPayload(kRetryAfterPayload, absl::Cord(absl::StrCat(e.retry_after_ms())));
      }
      // Retriable: pushed back (nothing stored); with idempotence also a transient server error
      // and a sequence gap (an earlier batch is being resent, or the partition needs a new
      // producer id: ResolveDrain decides once every answer is in).
      batch->gap = idempotent_ && IsSequenceGap(status);
      const bool retriable = absl::IsResourceExhausted(status) ||
                             (idempotent_ && (absl::IsUnavailable(status) || batch->gap));
      if (retriable && absl::Now() < batch->delivery_deadline && !abort_) {
        domain.draining = true;
        if (!batch->gap || domain.retry_status.ok()) domain.retry_status = status;
        domain.retry.push_back(std::move(batch));
      } else {
        Complete(std::move(batch), status, 0, 0, outcomes);
      }
    }
    ResolveDrain(domain, outcomes);
  }

  // The stream ended: every batch still in flight is resent (idempotent producer, before its
  // delivery deadline) or fails with the stream's status.
  void FailInFlight(const absl::Status& status, std::vector<Outcome>& outcomes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<Domain*> touched;
    for (auto& [id, entry] : in_flight_) {
      Domain& domain = DomainOf(*entry.batch);
      --domain.in_flight;
      if (idempotent_ && !abort_ && absl::Now() < entry.batch->delivery_deadline) {
        // Its outcome is unknown; a resend under the same id and sequence is stored at most once.
        domain.draining = true;
        domain.retry_status = status;
        domain.retry.push_back(std::move(entry.batch));
        touched.push_back(&domain);
        continue;
      }
      // Unanswered batches may have been stored: never resend a refused batch after them.
      if (domain.draining) domain.stored_after_failure = true;
      touched.push_back(&domain);
      Complete(std::move(entry.batch), status, 0, 0, outcomes);
    }
    in_flight_.clear();
    for (Domain* d : touched) ResolveDrain(*d, outcomes);
  }

  // Gives a batch sent for the first time (or renumbered) its producer id and sequence, getting
  // a fresh producer id first if its partition needs one. Returns false if it could not (the
  // server is unreachable): the batch is then back at the front of ready_ and its partition
  // waits a backoff. May unlock mu_ for the InitProducer call.
  bool AssignSequence(std::shared_ptr<Batch>& batch, std::vector<Outcome>& outcomes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Domain& domain = DomainOf(*batch);
    const int32_t n = batch->records();
    if (domain.producer_id == 0 && !domain.needs_producer_id && shared_producer_id_ != 0) {
      domain.producer_id = shared_producer_id_;  // one id for all partitions until a rebind
      domain.producer_epoch = shared_producer_epoch_;
    }
    if (domain.producer_id == 0 || domain.next_sequence > INT32_MAX - n) {
      domain.needs_producer_id = true;
    }
    if (domain.needs_producer_id) {
      mu_.Unlock();
      absl::StatusOr<std::pair<int64_t, int16_t>> id = NewProducerId();
      mu_.Lock();
      if (!id.ok()) {
        domain.resume_at = absl::Now() + domain.backoff.NextDelay(id.status());
        if (!IsRetriable(id.status()) && !absl::IsDeadlineExceeded(id.status())) {
          Complete(std::move(batch), id.status(), 0, 0, outcomes);
        } else {
          ready_.push_front(std::move(batch));
        }
        return false;
      }
      if (shared_producer_id_ == 0) {
        shared_producer_id_ = id->first;
        shared_producer_epoch_ = id->second;
      }
      domain.producer_id = id->first;
      domain.producer_epoch = id->second;
      domain.next_sequence = 0;
      domain.confirmed = false;
      domain.needs_producer_id = false;
    }
    batch->producer_id = domain.producer_id;
    batch->producer_epoch = domain.producer_epoch;
    batch->base_sequence = domain.next_sequence;
    domain.next_sequence += n;
    return true;
  }

  // A fresh producer id from the server (InitProducer), with the call deadline.
  absl::StatusOr<std::pair<int64_t, int16_t>> NewProducerId() ABSL_LOCKS_EXCLUDED(mu_) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
    evlog::v1::InitProducerResponse response;
    grpc::Status status = stub_->InitProducer(&context, {}, &response);
    if (!status.ok()) return FromGrpcStatus(status, &context);
    absl::MutexLock lock(&mu_);
    ++stats_.producer_ids;
    return std::make_pair(response.producer_id(), static_cast<int16_t>(response.producer_epoch()));
  }

  void ArmWatchdog() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (session_ == nullptr) return;
    watchdog_.Arm(session_->watch, in_flight_.empty() ? absl::InfiniteFuture()
                                                      : in_flight_.begin()->second.ack_deadline);
  }

  void ReceiverLoop(Session* session) {
    evlog::v1::ProduceResponse response;
    std::vector<Outcome> outcomes;
    while (session->stream->Read(&response)) {
      {
        absl::MutexLock lock(&mu_);
        HandleResponse(response, outcomes);
        ArmWatchdog();
        cv_.SignalAll();
      }
      RunOutcomes(outcomes);
    }
    absl::MutexLock lock(&mu_);
    session->read_done = true;
    cv_.SignalAll();
  }

  // Ends the current session after its reader finished; fails what it left unanswered.
  void ReapSession() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::unique_ptr<Session> s = std::move(session_);
    mu_.Unlock();
    s->receiver.join();
    grpc::Status status = s->stream->Finish();
    const bool timed_out = watchdog_.Unwatch(s->watch);
    mu_.Lock();
    absl::Status failure;
    if (timed_out) {
      failure = absl::DeadlineExceededError(absl::StrCat(
          "the server did not acknowledge a batch within ",
          absl::FormatDuration(options_.ack_timeout),
          "; it may be overloaded or unreachable (the batch may or may not be stored)"));
    } else if (abort_) {
      failure = absl::CancelledError("the producer was closed before the server acknowledged");
    } else if (status.ok()) {
      failure = absl::UnavailableError(
          "the produce stream ended before every batch was "
          "acknowledged (the batch may or may not be stored)");
    } else {
      failure = FromGrpcStatus(status, &s->context);
    }
    std::vector<Outcome> outcomes;
    FailInFlight(failure, outcomes);
    mu_.Unlock();
    RunOutcomes(outcomes);
    mu_.Lock();
    cv_.SignalAll();
  }

  void StartSession() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    session_ = std::make_unique<Session>();
    session_->watch = watchdog_.Watch(&session_->context, absl::InfiniteFuture());
    session_->stream = stub_->Produce(&session_->context);
    Session* s = session_.get();
    s->receiver = std::thread([this, s] { ReceiverLoop(s); });
    ++stats_.streams_opened;
  }

  bool Idle() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return ready_.empty() && in_flight_.empty() && pending_seqs_.empty();
  }

  void SenderLoop() {
    std::vector<Outcome> outcomes;
    mu_.Lock();
    while (true) {
      if (session_ != nullptr && session_->read_done) {
        ReapSession();
        continue;
      }
      const absl::Time now = absl::Now();
      absl::Time wake = absl::InfiniteFuture();

      if (abort_) {
        // Close's deadline passed: fail everything not yet sent and cancel the stream.
        for (auto& [key, domain] : domains_) {
          if (domain->open != nullptr) Seal(*domain);
          for (auto& b : domain->retry) ready_.push_back(std::move(b));
          domain->retry.clear();
        }
        for (auto& b : ready_) {
          Complete(std::move(b),
                   absl::CancelledError("the producer was closed before this "
                                        "record was sent"),
                   0, 0, outcomes);
        }
        ready_.clear();
        if (session_ != nullptr) session_->context.TryCancel();
      }

      // Pick the first batch whose partition may send.
      std::shared_ptr<Batch> batch;
      if (static_cast<int32_t>(in_flight_.size()) < max_in_flight_) {
        for (auto it = ready_.begin(); it != ready_.end(); ++it) {
          Domain& domain = DomainOf(**it);
          if (domain.draining) continue;
          if (idempotent_ && domain.in_flight >= InFlightLimit(domain)) continue;
          if (domain.resume_at > now) {
            wake = std::min(wake, domain.resume_at);
            continue;
          }
          if ((*it)->delivery_deadline <= now) {
            Complete(std::move(*it),
                     absl::DeadlineExceededError(absl::StrCat(
                         "a record could not be delivered within ",
                         absl::FormatDuration(options_.delivery_timeout), " of its Send")),
                     0, 0, outcomes);
            ready_.erase(it);
            break;  // rescan
          }
          batch = std::move(*it);
          ready_.erase(it);
          break;
        }
      }
      if (!outcomes.empty()) {
        mu_.Unlock();
        RunOutcomes(outcomes);
        mu_.Lock();
        if (batch == nullptr) continue;
      }

      // Nothing sealed could be sent: seal batches that lingered long enough, if they can go
      // now. While the window (or the partition's share of it) is full, a due batch stays open
      // and keeps filling, as Kafka's accumulator does: a slow server then gets fewer, bigger
      // batches instead of a queue of one-record ones. An acknowledgement wakes this loop.
      if (batch == nullptr && static_cast<int32_t>(in_flight_.size()) < max_in_flight_) {
        bool sealed = false;
        for (auto& [key, domain] : domains_) {
          if (domain->open == nullptr) continue;
          const absl::Time due = domain->open->created + options_.linger;
          if (due > now && !closing_) {
            wake = std::min(wake, due);
            continue;
          }
          const bool can_send = !domain->draining && domain->resume_at <= now &&
                                (!idempotent_ || domain->in_flight < InFlightLimit(*domain));
          if (can_send || abort_) {
            Seal(*domain);
            sealed = true;
          } else if (domain->resume_at > now) {
            wake = std::min(wake, domain->resume_at);  // backing off: look again then
          }
        }
        if (sealed) continue;
      }

      if (batch != nullptr && idempotent_ && batch->base_sequence < 0 &&
          !AssignSequence(batch, outcomes)) {
        continue;  // no producer id yet: the batch went back to the front of ready_
      }

      if (batch != nullptr) {
        if (session_ == nullptr) StartSession();
        const uint64_t id = next_request_id_++;
        batch->request.set_request_id(id);
        if (idempotent_) {
          batch->request.set_producer_id(batch->producer_id);
          batch->request.set_producer_epoch(batch->producer_epoch);
          batch->request.set_base_sequence(batch->base_sequence);
          batch->maybe_stored = true;
        }
        in_flight_[id] = InFlight{batch, now + options_.ack_timeout};
        ++DomainOf(*batch).in_flight;
        ++stats_.batches_sent;
        ArmWatchdog();
        Session* s = session_.get();
        const bool idempotent = idempotent_;
        mu_.Unlock();
        StampBatch(*batch, idempotent);
        // A failed Write means the stream is broken; its reader sees the end and the batch
        // fails with the stream's status.
        s->stream->Write(batch->request);
        batch.reset();
        mu_.Lock();
        continue;
      }

      if (closing_ && Idle()) {
        if (session_ == nullptr) break;
        Session* s = session_.get();
        mu_.Unlock();
        s->stream->WritesDone();
        mu_.Lock();
        mu_.Await(absl::Condition(&s->read_done));
        ReapSession();
        break;
      }
      cv_.WaitWithDeadline(&mu_, wake);
    }
    mu_.Unlock();
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<evlog::v1::ProducerService::Stub> stub_;
  std::unique_ptr<Admin> admin_;
  const ProducerOptions options_;
  Watchdog watchdog_;

  absl::Mutex mu_;
  absl::CondVar cv_;
  bool configured_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<bool> configured_once_{false};  // configured_, readable without mu_
  bool idempotent_ ABSL_GUARDED_BY(mu_) = false;
  int64_t shared_producer_id_ ABSL_GUARDED_BY(mu_) = 0;  // the first id, for new partitions
  int16_t shared_producer_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t batch_max_bytes_ ABSL_GUARDED_BY(mu_) = 1 << 20;
  int32_t batch_max_records_ ABSL_GUARDED_BY(mu_) = 16384;
  int32_t max_in_flight_ ABSL_GUARDED_BY(mu_) = 8;
  int64_t max_record_bytes_ ABSL_GUARDED_BY(mu_) = INT64_MAX;  // unknown: the server decides
  absl::flat_hash_map<std::string, int32_t> partition_counts_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::pair<std::string, int32_t>, std::unique_ptr<Domain>> domains_
      ABSL_GUARDED_BY(mu_);
  Domain* last_domain_ ABSL_GUARDED_BY(mu_) = nullptr;             // FindDomain's cache
  std::deque<std::shared_ptr<Batch>> ready_ ABSL_GUARDED_BY(mu_);  // sealed, in order
  std::map<uint64_t, InFlight> in_flight_ ABSL_GUARDED_BY(mu_);    // by request id
  std::set<int64_t> pending_seqs_ ABSL_GUARDED_BY(mu_);  // first_seq of unfinished batches
  std::multimap<int64_t, absl::Status> unreported_errors_ ABSL_GUARDED_BY(mu_);
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_request_id_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t buffered_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool abort_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<Session> session_ ABSL_GUARDED_BY(mu_);
  ProducerStats stats_ ABSL_GUARDED_BY(mu_);
  std::thread sender_;
};

}  // namespace

std::unique_ptr<Producer> Producer::Create(const std::string& target,
                                           const ProducerOptions& options) {
  return Create(CreateEvlogChannel(target), options);
}

std::unique_ptr<Producer> Producer::Create(std::shared_ptr<grpc::Channel> channel,
                                           const ProducerOptions& options) {
  return std::make_unique<ProducerImpl>(std::move(channel), options);
}

}  // namespace evlog::client
