// MetricsHttpServer: evlogd's Prometheus endpoint (`--metrics-listen`), an HTTP/1.1 server on
// libmicrohttpd with its own thread. GET (or HEAD) /metrics answers 200 with the scrape in the
// text exposition format (`text/plain; version=0.0.4`); any other path is 404 and any other
// method 405. It is deliberately small and bounded: one thread serves every connection in turn
// (a scrape is cheap, so a slow client cannot hold others up for long), at most
// kMaxConnections connections are open at once (more are refused at accept), and an idle
// connection is closed after kIdleTimeout.
//
// Thread safety: Start and the destructor from one thread; the scrape function runs on the
// server's thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

struct MHD_Daemon;

namespace evlog::server {

class MetricsHttpServer {
 public:
  static constexpr unsigned kMaxConnections = 16;
  static constexpr unsigned kIdleTimeoutSeconds = 10;

  // Serves `scrape()` at /metrics on `listen` ("HOST:PORT"; HOST an IPv4 or IPv6 address
  // (`[::1]`) or a name resolving to one; port 0 picks a free port). `scrape` must be
  // thread-safe and stay valid until the server is destroyed.
  // Errors: INVALID_ARGUMENT for a malformed address (the message names --metrics-listen);
  // UNAVAILABLE if the address cannot be bound (in use, not local).
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen, std::function<std::string()> scrape);

  // Stops accepting, closes connections and joins the server's thread; a scrape in progress
  // finishes first.
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // "HOST:PORT" with the port actually bound (HOST as given, e.g. "127.0.0.1" or "[::1]").
  const std::string& address() const { return address_; }

 private:
  explicit MetricsHttpServer(std::function<std::string()> scrape) : scrape_(std::move(scrape)) {}

  const std::function<std::string()> scrape_;
  MHD_Daemon* daemon_ = nullptr;
  std::string address_;

  friend struct MetricsHttpHandler;
};

// Checks a --metrics-listen value: empty (off) or "HOST:PORT" with PORT in 0..65535 (HOST may
// be "[v6]"). Errors: INVALID_ARGUMENT naming the flag and the expected form.
absl::Status ValidateMetricsListen(const std::string& listen);

}  // namespace evlog::server
