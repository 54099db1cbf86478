// The one place where evlog's client converts gRPC call outcomes into absl::Status values,
// and where deadlines are put on calls.
//
// Every client class (Producer, Reader, Admin) maps its grpc::Status through FromGrpcStatus, so
// callers see the same status codes the server chose (gRPC and Abseil share the numbering) and,
// for RESOURCE_EXHAUSTED, the server's retry hint (`retry-after-ms` trailer) as a payload.
#pragma once

#include <optional>

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace evlog::client {

// Payload URL under which FromGrpcStatus stores the server's retry hint, in milliseconds as
// decimal text. Read it back with RetryAfter().
inline constexpr absl::string_view kRetryAfterPayload = "evlog.v1/retry-after-ms";

// Converts a finished call's status. OK maps to absl::OkStatus(). Otherwise the code is kept and
// the message is the server's; an empty message gets a generic sentence for the code so that a
// person always reads something actionable (e.g. UNAVAILABLE: "cannot reach the server ...").
// `context` may be null; when given (and the call has finished) its trailing metadata is read
// for `retry-after-ms`, which is attached as the kRetryAfterPayload payload.
absl::Status FromGrpcStatus(const grpc::Status& status, const grpc::ClientContext* context);

// The server's retry hint carried by `status`, if any (see kRetryAfterPayload).
std::optional<absl::Duration> RetryAfter(const absl::Status& status);

// Puts a deadline `timeout` from now on `context`. REQUIRES: the call has not started.
void SetTimeout(grpc::ClientContext* context, absl::Duration timeout);

// Puts an absolute deadline on `context`; absl::InfiniteFuture() means none.
// REQUIRES: the call has not started.
void SetDeadline(grpc::ClientContext* context, absl::Time deadline);

}  // namespace evlog::client
