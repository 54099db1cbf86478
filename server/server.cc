#include "server/server.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "spdlog/spdlog.h"

namespace evlog::server {
namespace {

// After evlog calls have ended, how long other calls get before they are cancelled.
constexpr absl::Duration kFinalGrace = absl::Milliseconds(200);

}  // namespace

EvlogServer::EvlogServer(const ServerOptions& options, storage::LogStore* store)
    : router_(store),
      producer_(store, &router_, &drain_, options.limits),
      reader_(store, &drain_, options.limits),
      admin_(store, &router_, &drain_, options),
      coordinator_(store),
      groups_(&coordinator_, &drain_) {}

absl::StatusOr<std::unique_ptr<EvlogServer>> EvlogServer::Start(const ServerOptions& options,
                                                                storage::LogStore* store) {
  std::string host;
  int port = 0;
  if (absl::Status s = ParseListenAddress(options.listen, &host, &port); !s.ok()) return s;

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  std::unique_ptr<EvlogServer> server(new EvlogServer(options, store));
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(), &bound_port);
  // gRPC sets SO_REUSEPORT by default, which would let a second evlogd bind the same port and
  // silently share its traffic. A port in use must be an error.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&server->producer_);
  builder.RegisterService(&server->reader_);
  builder.RegisterService(&server->admin_);
  builder.RegisterService(&server->groups_);
  builder.SetMaxReceiveMessageSize(static_cast<int>(MaxRequestBytes(options.limits)));
  builder.SetMaxSendMessageSize(static_cast<int>(MaxResponseBytes(options.limits)));
  // Keepalive, as documented in evlog.proto: clients may ping every 5 s, even without calls;
  // the server pings idle connections every 30 s and drops those that do not answer in 10 s.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  // Synchronous calls (reads, admin) each hold a thread; leave room for every allowed read
  // stream plus admin calls and the health service.
  grpc::ResourceQuota quota("evlogd");
  quota.SetMaxThreads(options.limits.max_read_streams + 64);
  builder.SetResourceQuota(quota);

  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || bound_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen,
                     ": the address is in use, not local, or malformed (see the log above)"));
  }
  server->address_ = absl::StrCat(host, ":", bound_port);
  if (grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
    for (const char* service : {"evlog.v1.ProducerService", "evlog.v1.ReaderService",
                                "evlog.v1.AdminService", "evlog.v1.GroupService"}) {
      health->SetServingStatus(service, true);
    }
  }
  return server;
}

EvlogServer::~EvlogServer() {
  if (!shut_down_) Shutdown(absl::Seconds(10));
}

void EvlogServer::Shutdown(absl::Duration timeout) {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  const absl::Time deadline = absl::Now() + timeout;
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();  // every service NOT_SERVING from now on
  }
  drain_.StartDraining();
  if (!drain_.AwaitNoCalls(deadline)) {
    spdlog::warn("calls still running after {}; cancelling them", absl::FormatDuration(timeout));
  }
  // Only health watchers, reflection streams and calls past the deadline remain: a short grace
  // for calls that were just starting, then gRPC cancels the rest.
  server_->Shutdown(absl::ToChronoTime(std::min(deadline, absl::Now() + kFinalGrace)));
  server_->Wait();
}

}  // namespace evlog::server
