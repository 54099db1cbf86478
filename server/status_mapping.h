// The one place where absl::Status (from storage and validation) becomes a gRPC status or a
// per-request evlog.v1.Error. The codes are the same canonical codes (absl and gRPC number
// them identically); the message is kept, because storage and validation write messages for
// the person reading them.
#pragma once

#include <cstdint>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "evlog/v1/evlog.pb.h"

namespace evlog::server {

// The gRPC status carrying `status`'s code and message. OK maps to OK.
grpc::Status ToGrpcStatus(const absl::Status& status);

// Attaches a retry hint computed for this refusal (by admission control or a quota) to
// `status`, as a payload; FillError and AddRetryHint then send it instead of their default.
absl::Status WithRetryHint(absl::Status status, int64_t retry_after_ms);

// The hint attached by WithRetryHint, or 0 if there is none.
int64_t RetryHintOf(const absl::Status& status);

// Fills `error` from a non-OK `status`. For RESOURCE_EXHAUSTED, sets retry_after_ms to the
// status's own hint (WithRetryHint), else to `retry_after_ms`. REQUIRES: !status.ok().
void FillError(const absl::Status& status, int64_t retry_after_ms, evlog::v1::Error* error);

// Adds the `retry-after-ms` trailing metadata to `context` if `status` is RESOURCE_EXHAUSTED:
// the status's own hint (WithRetryHint), else `retry_after_ms`.
void AddRetryHint(const absl::Status& status, int64_t retry_after_ms,
                  grpc::ServerContextBase* context);

// The error a call gets while the server shuts down: UNAVAILABLE, asking the client to retry
// on a server that is up.
absl::Status ShuttingDownError();

}  // namespace evlog::server
