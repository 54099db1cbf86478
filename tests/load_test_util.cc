#include "tests/load_test_util.h"

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/rpc_test_util.h"

namespace evlog::testing {

std::shared_ptr<grpc::Channel> NewConnection(const std::string& address, int id) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("evlog.test.connection_id", id);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

int64_t TrailerHint(const grpc::ClientContext& context) {
  const auto& trailers = context.GetServerTrailingMetadata();
  auto it = trailers.find("retry-after-ms");
  int64_t ms = 0;
  if (it == trailers.end() ||
      !absl::SimpleAtoi(absl::string_view(it->second.data(), it->second.size()), &ms)) {
    return 0;
  }
  return ms;
}

HealthWatcher::HealthWatcher(const std::string& address, int connection_id, absl::Duration interval,
                             absl::Duration timeout) {
  thread_ = std::thread([this, address, connection_id, interval, timeout] {
    auto health = grpc::health::v1::Health::NewStub(NewConnection(address, connection_id));
    while (!stop_.load()) {
      grpc::health::v1::HealthCheckRequest request;
      grpc::health::v1::HealthCheckResponse response;
      grpc::Status status = health->Check(Deadline(timeout).get(), request, &response);
      if (status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        ++serving_;
      } else {
        ++not_serving_;
        absl::MutexLock lock(&mu_);
        last_problem_ = status.ok() ? "not SERVING" : Describe(status);
      }
      absl::SleepFor(interval);
    }
  });
}

HealthWatcher::~HealthWatcher() { Stop(); }

void HealthWatcher::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string HealthWatcher::last_problem() const {
  absl::MutexLock lock(&mu_);
  return last_problem_;
}

}  // namespace evlog::testing
