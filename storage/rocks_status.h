// The one place where RocksDB's status becomes an absl::Status (STYLE.md habit 5).
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rocksdb {
class Status;
}

namespace evlog::storage {

// Maps a RocksDB status to the code a caller should act on: corruption -> DATA_LOSS, a held
// LOCK -> FAILED_PRECONDITION, not found -> NOT_FOUND, busy/timeouts/I/O errors ->
// UNAVAILABLE, anything else -> INTERNAL. `context` prefixes the message ("opening /data").
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view context);

}  // namespace evlog::storage
