#include "server/status_mapping.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/types/optional.h"

namespace evlog::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

namespace {

// The payload carrying a computed retry hint inside the server (never sent as is).
constexpr char kRetryHintPayload[] = "evlog.server/retry-after-ms";

}  // namespace

absl::Status WithRetryHint(absl::Status status, int64_t retry_after_ms) {
  status.SetPayload(kRetryHintPayload, absl::Cord(std::to_string(retry_after_ms)));
  return status;
}

int64_t RetryHintOf(const absl::Status& status) {
  absl::optional<absl::Cord> hint = status.GetPayload(kRetryHintPayload);
  int64_t ms = 0;
  if (!hint.has_value() || !absl::SimpleAtoi(std::string(*hint), &ms) || ms < 0) return 0;
  return ms;
}

void FillError(const absl::Status& status, int64_t retry_after_ms, evlog::v1::Error* error) {
  error->set_code(static_cast<int32_t>(status.code()));
  error->set_message(std::string(status.message()));
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    const int64_t own = RetryHintOf(status);
    error->set_retry_after_ms(own > 0 ? own : retry_after_ms);
  }
}

void AddRetryHint(const absl::Status& status, int64_t retry_after_ms,
                  grpc::ServerContextBase* context) {
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    const int64_t own = RetryHintOf(status);
    context->AddTrailingMetadata("retry-after-ms", std::to_string(own > 0 ? own : retry_after_ms));
  }
}

absl::Status ShuttingDownError() {
  return absl::UnavailableError(
      "evlogd is shutting down; retry on a server that is up (requests not answered were not "
      "appended)");
}

}  // namespace evlog::server
