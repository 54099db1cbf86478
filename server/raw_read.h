// Helpers of the raw read path (ReadRequest.raw_batches): what the server needs to know about a
// stored batch it sends whole, without decoding it into records. The batches come from
// LogStore::ReadBatches, which has already checked their header and CRC; these functions only
// read the header fields and walk the record framing.
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace evlog::server {

// The record count in the header of a batch that LogStore::ReadBatches returned (so its
// header is known to be well formed). REQUIRES: batch.size() >= the batch header size.
int64_t StoredBatchRecordCount(absl::string_view batch);

// Sum over the records of `batch` (first record at `base_offset`) with offsets in
// [from, to) of key + value + header keys and values: the "record bytes" that
// evlog_bytes_out_total counts, as the records path counts them.
// Errors: DATA_LOSS if the record framing is inconsistent.
absl::StatusOr<int64_t> RecordBytesInRange(absl::string_view batch, int64_t base_offset,
                                           int64_t from, int64_t to);

}  // namespace evlog::server
