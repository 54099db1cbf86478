#include "server/produce_service.h"

#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

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

// Validates `request`, routes it to a partition and appends it asynchronously; `done` gets
// the outcome exactly once, possibly on the calling thread (validation errors) or on the
// store's writer thread. Consumes `request`'s records.
void SubmitBatch(storage::LogStore* store, PartitionRouter* router, const EdgeLimits& limits,
                 ProduceRequest* request, AppendDone done) {
  absl::StatusOr<std::vector<storage::Record>> batch = TakeValidBatch(request, limits);
  if (!batch.ok()) return done(batch.status());
  absl::StatusOr<int32_t> partition =
      router->Route(request->topic(), request->partition(), batch->front().key);
  if (!partition.ok()) return done(partition.status());
  storage::ProducerInfo producer;
  if (request->producer_id() != 0) {
    if (request->producer_id() < 0 || request->producer_epoch() < 0 ||
        request->producer_epoch() > INT16_MAX || request->base_sequence() < 0) {
      return done(absl::InvalidArgumentError(
          "an idempotent request needs producer_id > 0, producer_epoch in 0..32767 and "
          "base_sequence >= 0"));
    }
    if (request->partition() < 0) {
      return done(absl::InvalidArgumentError(
          "an idempotent request must name its partition (sequences are per partition)"));
    }
    producer = {.producer_id = request->producer_id(),
                .producer_epoch = static_cast<int16_t>(request->producer_epoch()),
                .base_sequence = request->base_sequence()};
  }
  const std::string& topic = request->topic();
  store->AppendAsync(topic, *partition, *std::move(batch), producer,
                     [router, topic, partition = *partition,
                      done = std::move(done)](absl::StatusOr<storage::AppendResult> result) {
                       if (!result.ok()) {
                         if (result.status().code() == absl::StatusCode::kNotFound) {
                           router->Forget(topic);
                         }
                         return done(result.status());
                       }
                       done(Appended{partition, *result});
                     });
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
                const EdgeLimits& limits)
      : context_(context),
        store_(store),
        router_(router),
        drain_(drain),
        slots_(slots),
        limits_(limits) {
    drain_->CallStarted();
    std::lock_guard<std::mutex> lock(mu_);
    if (!slots_->TryAcquire()) {
      const absl::Status refused = absl::ResourceExhaustedError(
          "too many produce streams are open (--max-produce-streams=" +
          std::to_string(slots_->capacity()) + "); retry later or share a stream");
      AddRetryHint(refused, limits_.retry_after_ms, context_);
      FinishLocked(ToGrpcStatus(refused));
      return;
    }
    holds_slot_ = true;
    if (!drain_->Register(this)) {
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
        CompleteLocked(
            slot, absl::UnavailableError("evlogd is shutting down; this request was not appended: "
                                         "resend it to a server that is up"));
        MaybeFinishLocked();
        return;
      }
      ++appends_outstanding_;
    }
    SubmitBatch(store_, router_, limits_, &request_, [this, slot](absl::StatusOr<Appended> r) {
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
    if (holds_slot_) slots_->Release();
    drain_->CallEnded();
    { std::lock_guard<std::mutex> lock(mu_); }  // let a callback that called Finish unlock
    delete this;
  }

 private:
  struct Slot {
    ProduceResponse response;
    int32_t requested_partition = -1;
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
  const EdgeLimits limits_;
  bool holds_slot_ = false;

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
                                         DrainController* drain, const EdgeLimits& limits)
    : store_(store),
      router_(router),
      drain_(drain),
      limits_(limits),
      stream_slots_(limits.max_produce_streams) {}

grpc::ServerBidiReactor<ProduceRequest, ProduceResponse>* ProducerServiceImpl::Produce(
    grpc::CallbackServerContext* context) {
  return new ProduceStream(context, store_, router_, drain_, &stream_slots_, limits_);
}

grpc::ServerUnaryReactor* ProducerServiceImpl::ProduceOne(grpc::CallbackServerContext* context,
                                                          const ProduceRequest* request,
                                                          ProduceResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  response->set_request_id(request->request_id());
  if (drain_->draining()) {
    reactor->Finish(ToGrpcStatus(ShuttingDownError()));
    return reactor;
  }
  drain_->CallStarted();
  ProduceRequest copy = *request;  // TakeValidBatch consumes records; the request is const
  const int32_t requested_partition = request->partition();
  const int64_t retry_after_ms = limits_.retry_after_ms;
  SubmitBatch(store_, router_, limits_, &copy,
              [context, reactor, response, requested_partition, retry_after_ms,
               drain = drain_](absl::StatusOr<Appended> outcome) {
                if (!outcome.ok()) {
                  AddRetryHint(outcome.status(), retry_after_ms, context);
                  reactor->Finish(ToGrpcStatus(outcome.status()));
                  drain->CallEnded();
                  return;
                }
                FillResponse(outcome, requested_partition, retry_after_ms, response);
                reactor->Finish(grpc::Status::OK);
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
