// Test helper: damages one stored batch of a closed data directory, behind the store's back,
// so that tests can check that corruption is reported (DATA_LOSS) and never served as data.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace evlog::storage::testing {

// Flips one bit of a record byte of the batch at `base_offset` of `partition` of topic
// `topic_id` (1 for a directory's first topic), in every segment that holds it: the batch's
// CRC32C no longer matches. REQUIRES: no store has `data_dir` open.
// Errors: NOT_FOUND if no segment holds such a batch; others from RocksDB or file I/O.
absl::Status CorruptStoredBatch(const std::string& data_dir, uint32_t topic_id, uint32_t partition,
                                int64_t base_offset);

}  // namespace evlog::storage::testing
