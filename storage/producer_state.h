// Idempotent producers: the per-(producer, partition) sequence state the writer checks before
// appending a batch, so that a batch retried after a lost acknowledgement is written once.
//
// Rules (as Kafka's idempotent producer):
//   - A producer has an id and an epoch; each batch carries the sequence number of its first
//     record, and sequences of one producer on one partition run 0, 1, 2, ... per record.
//   - Same epoch, base_sequence == last_sequence + 1: a new batch; append it.
//   - Same epoch, same sequence range as one of the last kMaxCachedBatches batches: a retry;
//     answer with that batch's original offsets and write nothing.
//   - Same epoch, base_sequence <= last_sequence otherwise: an older retry whose offsets are no
//     longer cached; refused as a duplicate (ALREADY_EXISTS), nothing written.
//   - Same epoch, base_sequence > last_sequence + 1: a gap (records were lost in between);
//     refused (FAILED_PRECONDITION, "sequence gap").
//   - Older epoch: the producer was replaced; refused (FAILED_PRECONDITION, "fenced").
//   - Newer epoch, or no state (new producer, or state expired after its idle time): the batch
//     starts the sequence; append it.
// Pure functions; the writer thread owns the state.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/optional.h"
#include "storage/record.h"

namespace evlog::storage {

inline constexpr size_t kMaxCachedBatches = 5;

struct ProducerBatch {
  int32_t first_sequence = 0;
  int32_t last_sequence = 0;
  int64_t base_offset = 0;
};

struct ProducerState {
  int16_t epoch = 0;
  int64_t last_append_ms = 0;
  std::deque<ProducerBatch> batches;  // newest last, at most kMaxCachedBatches
};

struct SequenceVerdict {
  enum Kind { kAppend, kDuplicate, kRefused } kind = kAppend;
  ProducerBatch original;  // for kDuplicate: the batch already stored
  absl::Status error;      // for kRefused
};

// Decides what to do with a batch of `record_count` records from `producer` given the stored
// state (null if none). REQUIRES: producer.producer_id >= 0.
SequenceVerdict CheckSequence(const ProducerState* state, const ProducerInfo& producer,
                              int32_t record_count);

// Records an appended batch in `state` (resetting it on a new epoch).
void RecordAppend(ProducerState* state, const ProducerInfo& producer, int32_t record_count,
                  int64_t base_offset, int64_t now_ms);

// Value encoding (meta_format.h, key "p"): u16 epoch, u16 count, u64 last_append_ms, then per
// batch i32 first_sequence, i32 last_sequence, u64 base_offset; little-endian.
std::string EncodeProducerState(const ProducerState& state);
absl::optional<ProducerState> DecodeProducerState(absl::string_view value);

}  // namespace evlog::storage
