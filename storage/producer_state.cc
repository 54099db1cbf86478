#include "storage/producer_state.h"

#include "absl/strings/str_cat.h"
#include "storage/coding.h"

namespace evlog::storage {

SequenceVerdict CheckSequence(const ProducerState* state, const ProducerInfo& producer,
                              int32_t record_count) {
  SequenceVerdict v;
  if (state == nullptr || state->batches.empty() || producer.producer_epoch > state->epoch) {
    return v;  // starts (or restarts) the sequence
  }
  if (producer.producer_epoch < state->epoch) {
    v.kind = SequenceVerdict::kRefused;
    v.error = absl::FailedPreconditionError(absl::StrCat(
        "producer fenced: producer ", producer.producer_id, " epoch ", producer.producer_epoch,
        " was replaced by epoch ", state->epoch, "; this producer instance must stop"));
    return v;
  }
  const int32_t last = state->batches.back().last_sequence;
  const int32_t last_of_batch = producer.base_sequence + record_count - 1;
  if (producer.base_sequence == last + 1) return v;
  for (const ProducerBatch& b : state->batches) {
    if (b.first_sequence == producer.base_sequence && b.last_sequence == last_of_batch) {
      v.kind = SequenceVerdict::kDuplicate;
      v.original = b;
      return v;
    }
  }
  v.kind = SequenceVerdict::kRefused;
  if (producer.base_sequence <= last) {
    v.error = absl::AlreadyExistsError(absl::StrCat(
        "duplicate batch: producer ", producer.producer_id, " sequence ", producer.base_sequence,
        " was already written (last sequence ", last, "); its offsets are no longer cached"));
  } else {
    v.error = absl::FailedPreconditionError(
        absl::StrCat("sequence gap: producer ", producer.producer_id, " sent sequence ",
                     producer.base_sequence, " but the next expected is ", last + 1));
  }
  return v;
}

void RecordAppend(ProducerState* state, const ProducerInfo& producer, int32_t record_count,
                  int64_t base_offset, int64_t now_ms) {
  if (producer.producer_epoch != state->epoch) {
    state->epoch = producer.producer_epoch;
    state->batches.clear();
  }
  state->batches.push_back(
      {producer.base_sequence, producer.base_sequence + record_count - 1, base_offset});
  while (state->batches.size() > kMaxCachedBatches) state->batches.pop_front();
  state->last_append_ms = now_ms;
}

std::string EncodeProducerState(const ProducerState& state) {
  std::string v;
  PutFixed16(&v, static_cast<uint16_t>(state.epoch));
  PutFixed16(&v, static_cast<uint16_t>(state.batches.size()));
  PutFixed64(&v, static_cast<uint64_t>(state.last_append_ms));
  for (const ProducerBatch& b : state.batches) {
    PutFixed32(&v, static_cast<uint32_t>(b.first_sequence));
    PutFixed32(&v, static_cast<uint32_t>(b.last_sequence));
    PutFixed64(&v, static_cast<uint64_t>(b.base_offset));
  }
  return v;
}

absl::optional<ProducerState> DecodeProducerState(absl::string_view v) {
  if (v.size() < 12) return absl::nullopt;
  ProducerState s;
  s.epoch = static_cast<int16_t>(DecodeFixed16(v.data()));
  const size_t n = DecodeFixed16(v.data() + 2);
  s.last_append_ms = static_cast<int64_t>(DecodeFixed64(v.data() + 4));
  if (v.size() != 12 + n * 16 || n > kMaxCachedBatches) return absl::nullopt;
  for (size_t i = 0; i < n; ++i) {
    const char* p = v.data() + 12 + i * 16;
    s.batches.push_back({static_cast<int32_t>(DecodeFixed32(p)),
                         static_cast<int32_t>(DecodeFixed32(p + 4)),
                         static_cast<int64_t>(DecodeFixed64(p + 8))});
  }
  return s;
}

}  // namespace evlog::storage
