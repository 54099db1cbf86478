#include "server/status_mapping.h"

#include <string>

namespace evlog::server {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

void FillError(const absl::Status& status, int64_t retry_after_ms, evlog::v1::Error* error) {
  error->set_code(static_cast<int32_t>(status.code()));
  error->set_message(std::string(status.message()));
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    error->set_retry_after_ms(retry_after_ms);
  }
}

void AddRetryHint(const absl::Status& status, int64_t retry_after_ms,
                  grpc::ServerContextBase* context) {
  if (status.code() == absl::StatusCode::kResourceExhausted) {
    context->AddTrailingMetadata("retry-after-ms", std::to_string(retry_after_ms));
  }
}

absl::Status ShuttingDownError() {
  return absl::UnavailableError(
      "evlogd is shutting down; retry on a server that is up (requests not answered were not "
      "appended)");
}

}  // namespace evlog::server
