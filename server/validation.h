// Validation at the edge: every check evlogd makes on a request before it reaches storage,
// with the status code and message the client gets. A request that fails validation changes
// no stored data. The limits are EdgeLimits (server_options.h); the contract is evlog.proto.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evlog/v1/evlog.pb.h"
#include "server/server_options.h"
#include "storage/record.h"

namespace evlog::server {

// OK if `name` is a valid topic name ([A-Za-z0-9._-]{1,249}); else INVALID_ARGUMENT saying
// what is allowed.
absl::Status ValidateTopicName(absl::string_view name);

// A record's size as evlog.proto defines it: key + value + header keys and values.
int64_t RecordSize(const evlog::v1::Record& record);

// Checks a produce request against `limits` and, if it is valid, moves its records out of
// `request` into storage records (timestamp 0 becomes "server time"). `request`'s topic and
// partition are left in place; its records are consumed either way only on success.
// Errors (all INVALID_ARGUMENT): bad topic name, partition < -1, no records, more than
// max_batch_records records, serialized size over max_batch_bytes, a record over
// max_record_bytes, a negative timestamp, partition -1 with records of different keys.
absl::StatusOr<std::vector<storage::Record>> TakeValidBatch(evlog::v1::ProduceRequest* request,
                                                            const EdgeLimits& limits);

// Checks the fields of a read request that do not need the partition's offsets: topic name,
// partition >= 0, exactly one start point, non-negative offset, timestamp, end_offset,
// max_records, max_bytes_per_response and heartbeat_ms. Errors: INVALID_ARGUMENT.
absl::Status ValidateReadRequest(const evlog::v1::ReadRequest& request);

}  // namespace evlog::server
