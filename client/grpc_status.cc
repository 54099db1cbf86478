#include "client/grpc_status.h"

#include <chrono>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace evlog::client {
namespace {

// A sentence for calls that failed without a message (typically failures of the transport).
std::string DefaultMessage(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kUnavailable:
      return "cannot reach the server; check that evlogd is running and --server is right";
    case absl::StatusCode::kDeadlineExceeded:
      return "the server did not answer before the deadline; it may be overloaded or "
             "unreachable";
    case absl::StatusCode::kCancelled:
      return "the call was cancelled";
    case absl::StatusCode::kResourceExhausted:
      return "the server is over its limits; retry later";
    case absl::StatusCode::kUnimplemented:
      return "the server does not implement this call; it may be an older evlogd";
    default:
      return "the call failed without a message";
  }
}

}  // namespace

absl::Status FromGrpcStatus(const grpc::Status& status, const grpc::ClientContext* context) {
  if (status.ok()) return absl::OkStatus();
  const auto code = static_cast<absl::StatusCode>(status.error_code());
  std::string message = status.error_message();
  if (message.empty()) message = DefaultMessage(code);
  absl::Status result(code, message);
  if (context != nullptr) {
    const auto& trailers = context->GetServerTrailingMetadata();
    auto it = trailers.find("retry-after-ms");
    if (it != trailers.end()) {
      int64_t ms = 0;
      absl::string_view text(it->second.data(), it->second.size());
      if (absl::SimpleAtoi(text, &ms) && ms >= 0) {
        result.SetPayload(kRetryAfterPayload, absl::Cord(absl::StrCat(ms)));
      }
    }
  }
  return result;
}

std::optional<absl::Duration> RetryAfter(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kRetryAfterPayload);
  if (!payload.has_value()) return std::nullopt;
  int64_t ms = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &ms) || ms < 0) return std::nullopt;
  return absl::Milliseconds(ms);
}

void SetTimeout(grpc::ClientContext* context, absl::Duration timeout) {
  SetDeadline(context, absl::Now() + timeout);
}

void SetDeadline(grpc::ClientContext* context, absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return;
  context->set_deadline(absl::ToChronoTime(deadline));
}

}  // namespace evlog::client
