#include "server/raw_batch_validation.h"

#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/server_metrics.h"
#include "server/validation.h"

namespace evlog::server {

absl::StatusOr<storage::ValidatedBatch> TakeValidRawBatch(evlog::v1::ProduceRequest* request,
                                                          const EdgeLimits& limits,
                                                          absl::string_view* reject_reason) {
  *reject_reason = kRejectInvalid;
  if (absl::Status s = ValidateTopicName(request->topic()); !s.ok()) return s;
  if (request->records_size() > 0) {
    return absl::InvalidArgumentError(
        "the request sets both records and batch; send the records either way, not both");
  }
  if (request->partition() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition ", request->partition(),
                     " is invalid with a batch: name the partition (>= 0); key routing (-1) "
                     "is only for requests with records"));
  }
  const int64_t id = request->producer_id();
  if (id < 0 ||
      (id > 0 && (request->producer_epoch() < 0 || request->producer_epoch() > INT16_MAX ||
                  request->base_sequence() < 0))) {
    return absl::InvalidArgumentError(
        "an idempotent request needs producer_id > 0, producer_epoch in 0..32767 and "
        "base_sequence >= 0");
  }
  storage::BatchDefect defect = storage::BatchDefect::kNone;
  absl::StatusOr<storage::ValidatedBatch> batch =
      storage::ValidateBatch(std::move(*request->mutable_batch()),
                             {.max_batch_bytes = limits.max_batch_bytes,
                              .max_records = limits.max_batch_records,
                              .max_record_bytes = limits.max_record_bytes},
                             &defect);
  if (!batch.ok()) {
    if (defect == storage::BatchDefect::kTooLarge) *reject_reason = kRejectBatchTooLarge;
    if (defect == storage::BatchDefect::kRecordTooLarge) *reject_reason = kRejectRecordTooLarge;
    return absl::InvalidArgumentError(
        absl::StrCat(batch.status().message(), " (--max-batch-bytes ", limits.max_batch_bytes,
                     ", --max-batch-records ", limits.max_batch_records, ", --max-record-bytes ",
                     limits.max_record_bytes, ")"));
  }
  const storage::BatchHeader& h = batch->header();
  if (h.leader_epoch != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch has leader_epoch ", h.leader_epoch,
                     "; producers must send 0 (the leader stamps epochs)"));
  }
  const storage::ProducerInfo expected =
      id == 0
          ? storage::ProducerInfo{}
          : storage::ProducerInfo{.producer_id = id,
                                  .producer_epoch = static_cast<int16_t>(request->producer_epoch()),
                                  .base_sequence = request->base_sequence()};
  if (h.producer.producer_id != expected.producer_id ||
      h.producer.producer_epoch != expected.producer_epoch ||
      h.producer.base_sequence != expected.base_sequence) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch header has producer_id ", h.producer.producer_id, ", producer_epoch ",
        h.producer.producer_epoch, ", base_sequence ", h.producer.base_sequence,
        " but the request has ", expected.producer_id, ", ", expected.producer_epoch, ", ",
        expected.base_sequence, " (-1 in all three when producer_id is 0): they must be equal"));
  }
  return batch;
}

}  // namespace evlog::server
