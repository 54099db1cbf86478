// ValidateBatch: checks that bytes from outside (a producer's ProduceRequest.batch, a leader's
// batch) are one well-formed batch in the format of batch_format.h, cheaply and without
// decoding records into objects, so that they can be stored byte for byte and every reader
// can later decode them.
//
// What is checked (everything a reader relies on):
//   - header: magic, version, attributes 0, header_size, total_length == the bytes' size,
//     size <= BatchLimits::max_batch_bytes, 1 <= record_count <= max_records;
//   - CRC32C over [12, total_length);
//   - producer fields: all -1 (not idempotent), or producer_id >= 0, producer_epoch >= 0,
//     base_sequence >= 0 and base_sequence + record_count - 1 <= INT32_MAX;
//   - every record's framing: its length, offset_delta == its index (dense), a timestamp
//     delta such that the first record's timestamp is first_timestamp_ms, no timestamp < 0,
//     the largest one equal to max_timestamp_ms, key, value, headers, nothing left over in
//     the record; exactly record_count records and no bytes after the last;
//   - every record's size (key + value + header keys and values) <= max_record_bytes.
// The leader epoch is not checked here: a follower stores any; the server requires 0 of
// producers (server/raw_batch_validation.h).
//
// Cost: one CRC pass and a few varint reads per record; no allocation besides the result.
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "storage/batch_codec.h"
#include "storage/batch_format.h"

namespace evlog::storage {

struct BatchLimits {
  int64_t max_batch_bytes = batch_format::kMaxBatchBytes;  // the whole batch, header included
  int64_t max_records = INT32_MAX;
  int64_t max_record_bytes = INT64_MAX;  // key + value + header keys and values
};

// Why ValidateBatch refused a batch (for metrics; the status says it to people).
enum class BatchDefect {
  kNone = 0,
  kMalformed,       // header or record framing wrong, bad producer fields, bad timestamps
  kChecksum,        // the CRC does not match: bytes changed after the batch was sealed
  kTooLarge,        // over max_batch_bytes or max_records
  kRecordTooLarge,  // a record over max_record_bytes
};

// A batch that passed ValidateBatch, with what the check learned. Only ValidateBatch makes
// one, so a function taking a ValidatedBatch knows its bytes are safe to store as they are.
class ValidatedBatch {
 public:
  ValidatedBatch(ValidatedBatch&&) = default;
  ValidatedBatch& operator=(ValidatedBatch&&) = default;

  const BatchHeader& header() const { return header_; }
  // Sum over records of key + value + header keys and values (what quotas and
  // evlog_bytes_in_total count).
  int64_t record_bytes() const { return record_bytes_; }
  const std::string& bytes() const { return bytes_; }
  // Moves the bytes out; the object is then empty.
  std::string TakeBytes() && { return std::move(bytes_); }

 private:
  friend absl::StatusOr<ValidatedBatch> ValidateBatch(std::string bytes, const BatchLimits& limits,
                                                      BatchDefect* defect);
  ValidatedBatch() = default;

  std::string bytes_;
  BatchHeader header_;
  int64_t record_bytes_ = 0;
};

// Checks `bytes` as described at the top of this file and, if they pass, returns them with
// their header. Errors: INVALID_ARGUMENT for every defect, CRC mismatch included (the sender
// built or sent a bad batch; nothing stored is lost, so it is not DATA_LOSS), with a message
// naming the defect and, for a record, its index. If `defect` is not null it is set to the
// reason (kNone on success).
absl::StatusOr<ValidatedBatch> ValidateBatch(std::string bytes, const BatchLimits& limits,
                                             BatchDefect* defect = nullptr);

}  // namespace evlog::storage
