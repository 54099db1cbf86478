#include "server/metrics_http.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace evlog::server {
namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

struct HostPort {
  std::string host;  // as given, brackets included for IPv6
  std::string bare;  // without brackets, for getaddrinfo
  int port = 0;
};

absl::StatusOr<HostPort> ParseHostPort(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == listen.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen=\"", listen,
                     "\" is not HOST:PORT (e.g. 127.0.0.1:9070, or port 0 for any free port)"));
  }
  HostPort hp;
  hp.host = listen.substr(0, colon);
  hp.bare = hp.host;
  if (hp.bare.size() >= 2 && hp.bare.front() == '[' && hp.bare.back() == ']') {
    hp.bare = hp.bare.substr(1, hp.bare.size() - 2);
  }
  if (!absl::SimpleAtoi(listen.substr(colon + 1), &hp.port) || hp.port < 0 || hp.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--metrics-listen=\"", listen, "\": the port must be a number in 0..65535"));
  }
  return hp;
}

// libmicrohttpd's own error messages (bind failures, accept errors) go to our log.
void LogMhdError(void* /*cls*/, const char* format, va_list args) {
  char buffer[512];
  std::vsnprintf(buffer, sizeof(buffer), format, args);
  size_t n = std::strlen(buffer);
  while (n > 0 && (buffer[n - 1] == '\n' || buffer[n - 1] == '\r')) buffer[--n] = '\0';
  spdlog::warn("metrics http: {}", buffer);
}

MHD_Result Respond(MHD_Connection* connection, unsigned status, const std::string& body,
                   const char* content_type) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  const MHD_Result result = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return result;
}

}  // namespace

// The request callback, a friend so that it can reach the scrape function.
struct MetricsHttpHandler {
  static MHD_Result Handle(void* cls, MHD_Connection* connection, const char* url,
                           const char* method, const char* /*version*/, const char* /*upload_data*/,
                           size_t* upload_data_size, void** /*con_cls*/) {
    auto* server = static_cast<MetricsHttpServer*>(cls);
    // A request body (there should be none) is ignored: answering at once makes MHD close
    // the connection after the response instead of reading it.
    *upload_data_size = 0;
    const bool get = std::strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    const bool head = std::strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (std::strcmp(url, "/metrics") != 0) {
      return Respond(connection, MHD_HTTP_NOT_FOUND,
                     "not found: evlogd serves Prometheus metrics at /metrics only\n",
                     "text/plain; charset=utf-8");
    }
    if (!get && !head) {
      return Respond(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                     "method not allowed: use GET /metrics\n", "text/plain; charset=utf-8");
    }
    return Respond(connection, MHD_HTTP_OK, server->scrape_(), kContentType);
  }
};

absl::Status ValidateMetricsListen(const std::string& listen) {
  if (listen.empty()) return absl::OkStatus();
  return ParseHostPort(listen).status();
}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen, std::function<std::string()> scrape) {
  absl::StatusOr<HostPort> hp = ParseHostPort(listen);
  if (!hp.ok()) return hp.status();

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(hp->port);
  if (const int rc = getaddrinfo(hp->bare.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("--metrics-listen=\"", listen,
                                                   "\": cannot resolve \"", hp->bare,
                                                   "\": ", gai_strerror(rc)));
  }
  sockaddr_storage address{};
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);
  const bool v6 = found->ai_family == AF_INET6;
  freeaddrinfo(found);

  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(std::move(scrape)));
  // MHD_USE_AUTO picks epoll on Linux: select() would fail once evlogd's descriptors (RocksDB
  // files, gRPC connections) pass FD_SETSIZE.
  unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
  if (v6) flags |= MHD_USE_IPv6;
  server->daemon_ =
      MHD_start_daemon(flags, static_cast<uint16_t>(hp->port), nullptr, nullptr,
                       &MetricsHttpHandler::Handle, server.get(),
                       // The logger first, so that errors about later options reach our log too.
                       MHD_OPTION_EXTERNAL_LOGGER, &LogMhdError, nullptr,                  //
                       MHD_OPTION_SOCK_ADDR, reinterpret_cast<const sockaddr*>(&address),  //
                       MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,                       //
                       MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeoutSeconds,                 //
                       MHD_OPTION_END);
  if (server->daemon_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve metrics on ", listen,
        ": the address is in use or not local (see the log above); fix --metrics-listen"));
  }
  const MHD_DaemonInfo* info = MHD_get_daemon_info(server->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  const int bound = info != nullptr && info->port != 0 ? info->port : hp->port;
  server->address_ = absl::StrCat(hp->host, ":", bound);
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

}  // namespace evlog::server
