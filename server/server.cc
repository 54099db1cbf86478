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
      admission_(options.admission),
      producer_(store, &router_, &drain_, &admission_, options.limits, &metrics_, &quotas_),
      reader_(store, &drain_, options.limits, &metrics_),
      admin_(store, &router_, &drain_, options, &quotas_, &metrics_),
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
  if (absl::Status s = server->quotas_.Load(*store); !s.ok()) return s;
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
  {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> creators;
    creators.push_back(server->metrics_.NewRefusalInterceptorFactory());
    builder.experimental().SetInterceptorCreators(std::move(creators));
  }
  server->admission_.SetRefusalObserver(
      [metrics = &server->metrics_](absl::string_view reason) { metrics->Rejected(reason); });
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
  // gRPC's share of --memory-budget: transport buffers and flow-control windows shrink under
  // pressure, so what gRPC reads ahead of the services stays bounded (admission.h).
  if (options.memory.grpc > 0) quota.Resize(static_cast<size_t>(options.memory.grpc));
  // No bandwidth-delay probing: it grows each stream's receive window far beyond the default
  // 64 KiB, so that 200 flooding streams made gRPC buffer ~100 MiB of unread requests ahead of
  // admission, pushed its memory quota into the pressure that stalls new calls (health checks
  // timed out) and doubled evlogd's peak memory in the burst test. A produce stream never needs
  // more than max_inflight_per_stream requests ahead, and on a LAN 64 KiB windows suffice.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  builder.SetResourceQuota(quota);
  // A client may open at most this many streams per connection and queues the rest itself,
  // so one connection cannot make the server read an unbounded number of calls.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS,
                             options.admission.max_streams_per_connection);

  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || bound_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen,
                     ": the address is in use, not local, or malformed (see the log above)"));
  }
  server->address_ = absl::StrCat(host, ":", bound_port);
  EvlogServer* self = server.get();
  self->metrics_.AddServerSources(
      {.store = store,
       .coordinator = &self->coordinator_,
       .produce_streams = [self] { return int64_t{self->producer_.open_streams()}; },
       .read_streams = [self] { return int64_t{self->reader_.open_streams()}; }});
  self->metrics_.SetInflightRequestBytesSource(
      [self] { return self->admission_.inflight_bytes(); });
  if (!options.metrics_listen.empty()) {
    absl::StatusOr<std::unique_ptr<MetricsHttpServer>> http = MetricsHttpServer::Start(
        options.metrics_listen, [self] { return self->metrics_.Scrape(); });
    if (!http.ok()) return http.status();  // ~EvlogServer shuts the gRPC server down
    self->metrics_http_ = *std::move(http);
  }
  if (grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
    for (const char* service : {"evlog.v1.ProducerService", "evlog.v1.ReaderService",
                                "evlog.v1.AdminService", "evlog.v1.GroupService"}) {
      health->SetServingStatus(service, true);
    }
  }
  return server;
}

const std::string& EvlogServer::metrics_address() const {
  static const std::string kNone;
  return metrics_http_ != nullptr ? metrics_http_->address() : kNone;
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
  metrics_http_.reset();  // scrapes keep working during the drain, not after
}

}  // namespace evlog::server
