#include "server/produce_service.h"

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/raw_batch_validation.h"
#include "server/status_mapping.h"
#include "server/validation.h"
#include "spdlog/spdlog.h"

namespace evlog::server {
namespace {

using evlog::v1::ProduceRequest;
using evlog::v1::ProduceResponse;

// The outcome of one produce request: its partition and what the store assigned.
struct Appended {
  int32_t partition = -1;
  storage::AppendResult result;
};
using AppendDone = std::function<void(absl::StatusOr<Appended>)>;

// The store's completion of an append of `record_bytes` (key + value + headers) to
// `partition` of `topic`: settles the quota charge, counts the outcome and hands it to `done`.
// Shared by the records and the batch paths, so both count and refuse alike.
storage::LogStore::AppendCallback OnAppended(PartitionRouter* router, std::string topic,
                                             int32_t partition, ServerMetrics* metrics,
                                             TopicMetrics* series, int64_t record_bytes,
                                             absl::Time received, QuotaCharge charge,
                                             AppendDone done) {
  return [router, topic = std::move(topic), partition, metrics, series, record_bytes, received,
          charge = std::move(charge),
          done = std::move(done)](absl::StatusOr<storage::AppendResult> result) {
    charge.Settle(result);
    if (!result.ok()) {
      if (result.status().code() == absl::StatusCode::kNotFound) {
        router->Forget(topic);
      } else if (result.status().code() == absl::StatusCode::kResourceExhausted) {
        metrics->Rejected(kRejectQueueFull);
      } else if (result.status().code() == absl::StatusCode::kInvalidArgument) {
        metrics->Rejected(kRejectInvalid);
      }
      return done(result.status());
    }
    if (!result->duplicate) {
      series->records_in->Add(static_cast<uint64_t>(result->last_offset - result->base_offset + 1));
      series->bytes_in->Add(static_cast<uint64_t>(record_bytes));
      metrics->ObserveProduceLatency(absl::Now() - received);
    }
    done(Appended{partition, *result});
  };
}

// The fast path of a request that carries a pre-encoded batch (ProduceRequest.batch): checked
// without decoding (raw_batch_validation.h), admitted by the same quotas with counts from the
// validation, and stored byte for byte (LogStore::AppendRawAsync). Same contract as
// SubmitBatch.
void SubmitRawBatch(storage::LogStore* store, PartitionRouter* router, const EdgeLimits& limits,
                    ServerMetrics* metrics, TopicMetricsCache* topic_metrics, QuotaEnforcer* quotas,
                    ProduceRequest* request, absl::Time received, AppendDone done) {
  absl::string_view reason;
  absl::StatusOr<storage::ValidatedBatch> batch = TakeValidRawBatch(request, limits, &reason);
  if (!batch.ok()) {
    metrics->Rejected(reason);
    return done(batch.status());
  }
  // The topic and partition must exist before anything is counted under the topic's name
  // (a series per unknown name would let bad requests grow /metrics without bound).
  absl::StatusOr<int32_t> partition = router->Route(request->topic(), request->partition(), "");
  if (!partition.ok()) return done(partition.status());
  const int64_t record_bytes = batch->record_bytes();
  absl::StatusOr<QuotaCharge> charge =
      quotas == nullptr ? QuotaCharge()
                        : quotas->Admit(request->topic(), request->producer_id(),
                                        batch->header().record_count, record_bytes);
  if (!charge.ok()) {
    metrics->Rejected(kRejectQuota);
    return done(charge.status());
  }
  const std::string& topic = request->topic();
  TopicMetrics* series = topic_metrics->Get(metrics, topic);  // the topic exists: routed
  store->AppendRawAsync(topic, request->partition(), *std::move(batch),
                        OnAppended(router, topic, request->partition(), metrics, series,
                                   record_bytes, received, *std::move(charge), std::move(done)));
}

// Validates `request`, routes it to a partition and appends it asynchronously; `done` gets
// the outcome exactly once, possibly on the calling thread (validation errors) or on the
// store's writer thread. Consumes `request`'s records. Counts the request in `metrics`: a
// refusal by its reason, an append in its topic's series (`topic_metrics` caches the lookup)
// and in the latency histogram.
void SubmitBatch(storage::LogStore* store, PartitionRouter* router, const EdgeLimits& limits,
                 ServerMetrics* metrics, TopicMetricsCache* topic_metrics, QuotaEnforcer* quotas,
                 ProduceRequest* request, AppendDone done) {
  const absl::Time received = absl::Now();
  if (!request->batch().empty()) {
    return SubmitRawBatch(store, router, limits, metrics, topic_metrics, quotas, request, received,
                          std::move(done));
  }
  absl::StatusOr<std::vector<storage::Record>> batch = TakeValidBatch(request, limits);
  if (!batch.ok()) {
    metrics->Rejected(InvalidBatchReason(*request, limits));
    return done(batch.status());
  }
  absl::StatusOr<int32_t> partition =
      router->Route(request->topic(), request->partition(), batch->front().key);
  if (!partition.ok()) return done(partition.status());
  storage::ProducerInfo producer;
  if (request->producer_id() != 0) {
    if (request->producer_id() < 0 || request->producer_epoch() < 0 ||
        request->producer_epoch() > INT16_MAX || request->base_sequence() < 0) {
      metrics->Rejected(kRejectInvalid);
      return done(absl::InvalidArgumentError(
          "an idempotent request needs producer_id > 0, producer_epoch in 0..32767 and "
          "base_sequence >= 0"));
    }
    if (request->partition() < 0) {
      metrics->Rejected(kRejectInvalid);
      return done(absl::InvalidArgumentError(
          "an idempotent request must name its partition (sequences are per partition)"));
    }
    producer = {.producer_id = request->producer_id(),
                .producer_epoch = static_cast<int16_t>(request->producer_epoch()),
                .base_sequence = request->base_sequence()};
  }
  // Rate quotas (quota.h): refused at once with a computed retry hint, nothing taken; an
  // append that stores nothing gives its tokens back (charge.Settle below).
  absl::StatusOr<QuotaCharge> charge =
      AdmitBatch(quotas, request->topic(), request->producer_id(), *batch);
  if (!charge.ok()) {
    metrics->Rejected(kRejectQuota);
    return done(charge.status());
  }
  const std::string& topic = request->topic();
  TopicMetrics* series = topic_metrics->Get(metrics, topic);  // the topic exists: routed
  const int64_t record_bytes = BatchRecordBytes(*batch);
  store->AppendAsync(topic, *partition, *std::move(batch), producer,
                     OnAppended(router, topic, *partition, metrics, series, record_bytes, received,
                                *std::move(charge), std::move(done)));
}

// Fills `response` (whose request_id is set) with the outcome of a request to `partition`.
void FillResponse(const absl::StatusOr<Appended>& outcome, int32_t requested_partition,
                  int64_t retry_after_ms, ProduceResponse* response) {
  if (!outcome.ok()) {
    response->set_partition(requested_partition);
    FillError(outcome.status(), retry_after_ms, response->mutable_error());
    return;
  }
  response->set_partition(outcome->partition);
  response->set_base_offset(outcome->result.base_offset);
  response->set_record_count(
      static_cast<int32_t>(outcome->result.last_offset - outcome->result.base_offset + 1));
  response->set_append_time_ms(outcome->result.append_time_ms);
  response->set_duplicate(outcome->result.duplicate);
}

// One Produce stream.
//
// Flow: a read is outstanding while fewer than max_inflight requests are unanswered. Each
// request read gets a Slot at the back of `pending_` and is submitted to the store; its
// completion marks the slot done. The front slot is written once done (one write at a time),
// and popped when the write completes, which may resume reading. reading_ covers both the
// outstanding read and the submission of what it read, so requests reach the store in the
// order they arrived. Hence responses go out in request order, appends happen in request
// order, and at most max_inflight responses are ever buffered.
//
// Ending: Finish is called once nothing is pending, no write is in progress and no append is
// outstanding (the store's callbacks point into this object), with OK after the client
// half-closed, UNAVAILABLE when draining, CANCELLED when the stream broke. OnDone deletes
// the object.
//
// Locking: mu_ guards all state. StartRead/StartWrite/Finish are called under mu_ (they do
// not run reactions inline). Store calls are made without mu_ held, because the store may run
// the callback on the calling thread. mu_ is a std::mutex because OnDone locks and unlocks it
// just before `delete this` (to wait out a store callback that called Finish), which glibc's
// mutex supports.
class ProduceStream final : public grpc::ServerBidiReactor<ProduceRequest, ProduceResponse>,
                            public DrainController::Listener {
 public:
  ProduceStream(grpc::CallbackServerContext* context, storage::LogStore* store,
                PartitionRouter* router, DrainController* drain, StreamSlots* slots,
                AdmissionController* admission, const EdgeLimits& limits, ServerMetrics* metrics,
                QuotaEnforcer* quotas)
      : context_(context),
        store_(store),
        router_(router),
        drain_(drain),
        slots_(slots),
        admission_(admission),
        limits_(limits),
        metrics_(metrics),
        quotas_(quotas) {
    drain_->CallStarted();
    std::lock_guard<std::mutex> lock(mu_);
    if (!slots_->TryAcquire()) {
      const absl::Status refused = absl::ResourceExhaustedError(
          "too many produce streams are open (--max-produce-streams=" +
          std::to_string(slots_->capacity()) + "); retry later or share a stream");
      AddRetryHint(refused, limits_.retry_after_ms, context_);
      metrics_->Rejected(kRejectStreamLimit);
      FinishLocked(ToGrpcStatus(refused));
      return;
    }
    holds_slot_ = true;
    absl::StatusOr<AdmissionController::Connection*> connection =
        admission_->StartCall(context_->peer());
    if (!connection.ok()) {  // too many connections: refused with a hint, nothing was read
      AddRetryHint(connection.status(), limits_.retry_after_ms, context_);
      FinishLocked(ToGrpcStatus(connection.status()));
      return;
    }
    connection_ = *connection;
    if (!drain_->Register(this)) {
      metrics_->Rejected(kRejectShuttingDown);
      FinishLocked(ToGrpcStatus(ShuttingDownError()));
      return;
    }
    reading_ = true;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    // reading_ stays true until request_ has been submitted: no other thread may start the
    // next read meanwhile (it would overwrite request_, or submit a later request first).
    Slot* slot;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!ok) {
        reading_ = false;
        reads_done_ = true;
        MaybeFinishLocked();
        return;
      }
      if (finished_) {  // the read raced with Finish: the client resends unanswered requests
        reading_ = false;
        return;
      }
      slot = &pending_.emplace_back();
      slot->response.set_request_id(request_.request_id());
      slot->requested_partition = request_.partition();
      if (draining_) {
        reading_ = false;
        metrics_->Rejected(kRejectShuttingDown);
        CompleteLocked(
            slot, absl::UnavailableError("evlogd is shutting down; this request was not appended: "
                                         "resend it to a server that is up"));
        MaybeFinishLocked();
        return;
      }
      // Charged until the response is written; refused at once (in order, with a hint) if
      // the connection's or the server's in-flight budget is full.
      const int64_t bytes = static_cast<int64_t>(request_.ByteSizeLong());
      if (absl::Status admitted = admission_->Charge(connection_, bytes); !admitted.ok()) {
        reading_ = false;
        CompleteLocked(slot, admitted);
        MaybeReadLocked();
        MaybeFinishLocked();
        return;
      }
      slot->charged_bytes = bytes;
      ++appends_outstanding_;
    }
    SubmitBatch(store_, router_, limits_, metrics_, &topic_metrics_, quotas_, &request_,
                [this, slot](absl::StatusOr<Appended> r) {
                  if (!r.ok()) r = admission_->HintStorageRefusal(r.status(), slot->charged_bytes);
                  std::lock_guard<std::mutex> lock(mu_);
                  --appends_outstanding_;
                  CompleteLocked(slot, r);
                  MaybeFinishLocked();
                });
    std::lock_guard<std::mutex> lock(mu_);
    reading_ = false;
    MaybeReadLocked();
    MaybeFinishLocked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      broken_ = true;  // the client is gone; wait for outstanding appends, then finish
    } else {
      if (pending_.front().charged_bytes > 0) {
        admission_->Release(connection_, pending_.front().charged_bytes);
      }
      pending_.pop_front();
      MaybeReadLocked();
      MaybeWriteLocked();
    }
    MaybeFinishLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    broken_ = true;
    MaybeFinishLocked();
  }

  void OnDrain() override {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
    MaybeFinishLocked();
  }

  void OnDone() override {
    drain_->Unregister(this);
    if (connection_ != nullptr) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (const Slot& slot : pending_) {  // responses never written (the stream broke)
          if (slot.charged_bytes > 0) admission_->Release(connection_, slot.charged_bytes);
        }
      }
      admission_->EndCall(connection_);
    }
    if (holds_slot_) slots_->Release();
    drain_->CallEnded();
    { std::lock_guard<std::mutex> lock(mu_); }  // let a callback that called Finish unlock
    delete this;
  }

 private:
  struct Slot {
    ProduceResponse response;
    int32_t requested_partition = -1;
    // Bytes charged to admission control (0 if refused); released when the response is
    // written or the stream ends. Written under mu_ before the append is submitted, read-only
    // afterwards.
    int64_t charged_bytes = 0;
    bool done = false;
  };

  void CompleteLocked(Slot* slot, const absl::StatusOr<Appended>& outcome) {
    FillResponse(outcome, slot->requested_partition, limits_.retry_after_ms, &slot->response);
    slot->done = true;
    MaybeWriteLocked();
  }

  void MaybeReadLocked() {
    if (reading_ || reads_done_ || draining_ || broken_ || finished_) return;
    if (static_cast<int32_t>(pending_.size()) >= limits_.max_inflight_per_stream) return;
    reading_ = true;
    StartRead(&request_);
  }

  void MaybeWriteLocked() {
    if (writing_ || broken_ || finished_ || pending_.empty() || !pending_.front().done) return;
    writing_ = true;
    StartWrite(&pending_.front().response);
  }

  void MaybeFinishLocked() {
    if (finished_ || writing_ || appends_outstanding_ > 0) return;
    if (broken_) {
      FinishLocked(grpc::Status::CANCELLED);
    } else if ((reads_done_ || draining_) && pending_.empty()) {
      FinishLocked(reads_done_ ? grpc::Status::OK : ToGrpcStatus(ShuttingDownError()));
    }
  }

  void FinishLocked(grpc::Status status) {
    finished_ = true;
    Finish(std::move(status));
  }

  grpc::CallbackServerContext* const context_;
  storage::LogStore* const store_;
  PartitionRouter* const router_;
  DrainController* const drain_;
  StreamSlots* const slots_;
  AdmissionController* const admission_;
  const EdgeLimits limits_;
  ServerMetrics* const metrics_;
  QuotaEnforcer* const quotas_;      // may be null: no quotas
  TopicMetricsCache topic_metrics_;  // used by SubmitBatch, which reading_ serializes
  bool holds_slot_ = false;
  AdmissionController::Connection* connection_ = nullptr;  // set once admitted

  std::mutex mu_;
  ProduceRequest request_;       // target of the outstanding read; used by OnReadDone only
  std::deque<Slot> pending_;     // unanswered requests in request order (references stable)
  int appends_outstanding_ = 0;  // store callbacks not yet run
  bool reading_ = false;
  bool writing_ = false;
  bool reads_done_ = false;  // the client half-closed (or the stream ended)
  bool draining_ = false;
  bool broken_ = false;  // a write failed or the call was cancelled
  bool finished_ = false;
};

}  // namespace

ProducerServiceImpl::ProducerServiceImpl(storage::LogStore* store, PartitionRouter* router,
                                         DrainController* drain, AdmissionController* admission,
                                         const EdgeLimits& limits, ServerMetrics* metrics,
                                         QuotaEnforcer* quotas)
    : store_(store),
      router_(router),
      drain_(drain),
      admission_(admission),
      limits_(limits),
      metrics_(metrics),
      quotas_(quotas),
      stream_slots_(limits.max_produce_streams) {}

grpc::ServerBidiReactor<ProduceRequest, ProduceResponse>* ProducerServiceImpl::Produce(
    grpc::CallbackServerContext* context) {
  return new ProduceStream(context, store_, router_, drain_, &stream_slots_, admission_, limits_,
                           metrics_, quotas_);
}

grpc::ServerUnaryReactor* ProducerServiceImpl::ProduceOne(grpc::CallbackServerContext* context,
                                                          const ProduceRequest* request,
                                                          ProduceResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  response->set_request_id(request->request_id());
  if (drain_->draining()) {
    metrics_->Rejected(kRejectShuttingDown);
    reactor->Finish(ToGrpcStatus(ShuttingDownError()));
    return reactor;
  }
  drain_->CallStarted();
  // Admission as for one request of a stream: refused at once, with a hint, if this call's
  // connection may not produce now or the request does not fit the in-flight budgets.
  absl::StatusOr<AdmissionController::Connection*> connection =
      admission_->StartCall(context->peer());
  const int64_t bytes = static_cast<int64_t>(request->ByteSizeLong());
  absl::Status admitted = connection.status();
  if (admitted.ok()) {
    admitted = admission_->Charge(*connection, bytes);
    if (!admitted.ok()) admission_->EndCall(*connection);
  }
  if (!admitted.ok()) {
    AddRetryHint(admitted, limits_.retry_after_ms, context);
    reactor->Finish(ToGrpcStatus(admitted));
    drain_->CallEnded();
    return reactor;
  }
  ProduceRequest copy = *request;  // TakeValidBatch consumes records; the request is const
  const int32_t requested_partition = request->partition();
  const int64_t retry_after_ms = limits_.retry_after_ms;
  TopicMetricsCache topic_metrics;  // one request per call: a lookup per call
  SubmitBatch(store_, router_, limits_, metrics_, &topic_metrics, quotas_, &copy,
              [context, reactor, response, requested_partition, retry_after_ms, bytes,
               admission = admission_, connection = *connection,
               drain = drain_](absl::StatusOr<Appended> outcome) {
                if (!outcome.ok()) {
                  const absl::Status status =
                      admission->HintStorageRefusal(outcome.status(), bytes);
                  AddRetryHint(status, retry_after_ms, context);
                  reactor->Finish(ToGrpcStatus(status));
                } else {
                  FillResponse(outcome, requested_partition, retry_after_ms, response);
                  reactor->Finish(grpc::Status::OK);
                }
                admission->Release(connection, bytes);
                admission->EndCall(connection);
                drain->CallEnded();
              });
  return reactor;
}

grpc::ServerUnaryReactor* ProducerServiceImpl::InitProducer(
    grpc::CallbackServerContext* context, const evlog::v1::InitProducerRequest* /*request*/,
    evlog::v1::InitProducerResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<storage::ProducerInfo> producer = store_->InitProducer();
  if (!producer.ok()) {
    reactor->Finish(ToGrpcStatus(producer.status()));
    return reactor;
  }
  response->set_producer_id(producer->producer_id);
  response->set_producer_epoch(producer->producer_epoch);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace evlog::server
