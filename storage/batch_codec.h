// Encoding and decoding of record batches in the format of batch_format.h.
//
// Encoding happens on the appending thread (not the writer), decoding on the reading thread;
// all functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/record.h"

namespace evlog::storage {

// The decoded fixed header of a batch.
struct BatchHeader {
  uint32_t total_length = 0;
  int32_t record_count = 0;
  int32_t leader_epoch = 0;
  int64_t first_timestamp_ms = 0;
  int64_t max_timestamp_ms = 0;
  ProducerInfo producer;
};

// Encodes `records` (offsets ignored; timestamps must be >= 0) as one batch.
// REQUIRES: !records.empty().
std::string EncodeBatch(const std::vector<Record>& records, const ProducerInfo& producer,
                        int32_t leader_epoch);

// Parses and checks the header and the CRC of `batch`, without decoding records.
// Errors: DATA_LOSS for a bad magic, version, length or CRC.
absl::StatusOr<BatchHeader> VerifyBatch(absl::string_view batch);

// Decodes the records of a verified batch whose first record has offset `base_offset`,
// appending to `out` those with offset >= `min_offset`, at most `max_records` of them.
// Errors: DATA_LOSS if the framing is inconsistent (e.g. the record count does not match).
absl::Status DecodeRecords(absl::string_view batch, int64_t base_offset, int64_t min_offset,
                           int64_t max_records, std::vector<Record>* out);

// One record of a batch, viewed in place: the views point into the batch's bytes and are valid
// while they are. `headers` is reused from record to record (no allocation per record once it
// has grown to the largest header count).
struct RecordView {
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  absl::string_view key;
  absl::string_view value;
  std::vector<std::pair<absl::string_view, absl::string_view>> headers;  // (key, value)
};

// Calls visit(view) for each record of a verified batch (first record at `base_offset`) whose
// offset is in [min_offset, end_offset), in offset order, without copying any bytes: the
// decoding path for readers that build their own record type (the client's raw reads).
// Errors: DATA_LOSS if the framing is inconsistent; records visited before the inconsistency
// was found have been visited (callers discard them on error).
absl::Status VisitRecords(absl::string_view batch, int64_t base_offset, int64_t min_offset,
                          int64_t end_offset, absl::FunctionRef<void(const RecordView&)> visit);

// The offset of the first record in `batch` (based at base_offset) whose timestamp is >= ts,
// or -1 if there is none. Errors: DATA_LOSS.
absl::StatusOr<int64_t> FindTimestamp(absl::string_view batch, int64_t base_offset, int64_t ts);

}  // namespace evlog::storage
