// Validation at the edge of a produce request that carries a pre-encoded batch
// (ProduceRequest.batch): the request-level rules of evlog.proto on top of the format checks
// of storage/batch_validator.h. A request that fails changes no stored data.
#pragma once

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "evlog/v1/evlog.pb.h"
#include "server/server_options.h"
#include "storage/batch_validator.h"

namespace evlog::server {

// Checks `request` (whose `batch` is set) against `limits` and, if it is valid, moves the batch
// bytes out of it (`request`'s other fields stay). Errors, all INVALID_ARGUMENT: bad topic name;
// records set as well; partition < 0; bad idempotence fields (producer_id < 0, or > 0 with an
// epoch outside 0..32767 or a negative base_sequence); any defect ValidateBatch finds (size,
// record count, record size, CRC, framing, timestamps); leader_epoch != 0; header producer
// fields different from the request's (all -1 when producer_id is 0). `reject_reason` (not
// null) gets the metrics reason of a refusal (kRejectInvalid, kRejectBatchTooLarge or
// kRejectRecordTooLarge of server_metrics.h). Thread-safe (pure).
absl::StatusOr<storage::ValidatedBatch> TakeValidRawBatch(evlog::v1::ProduceRequest* request,
                                                          const EdgeLimits& limits,
                                                          absl::string_view* reject_reason);

}  // namespace evlog::server
