// FaultProxy: a TCP proxy for tests that sits between a client and evlogd and breaks the path
// on command, the ways real networks break:
//
//   pass       forward bytes both ways (optionally after a delay)
//   refuse     new connections are refused (nothing listens: connect() gets ECONNREFUSED);
//              connections already open keep working
//   blackhole  like a firewall that silently drops packets: new connections are accepted but
//              nothing is forwarded or answered, and open connections stop forwarding. Bytes
//              are not read while blackholed, so TCP flow control holds them (as a real sender
//              retransmits dropped packets); if the path comes back before the endpoints give
//              up, they flow on intact.
//   reset      every open connection is closed with a TCP RST (a one-off action)
//
// Only loopback: the proxy listens on 127.0.0.1 with a free port.
//
// Thread safety: every method may be called from any thread. Each connection is served by its
// own thread; the destructor stops and joins them all and closes every socket.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evlog::testing {

class FaultProxy {
 public:
  enum class Mode { kPass, kRefuse, kBlackhole };

  // Starts a proxy on 127.0.0.1 (a free port) forwarding to upstream_host:upstream_port.
  // Errors: UNAVAILABLE if no socket can be bound.
  static absl::StatusOr<std::unique_ptr<FaultProxy>> Start(const std::string& upstream_host,
                                                           int upstream_port);
  ~FaultProxy();
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  // The port the proxy listens on (stable across refuse/pass).
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Changes the mode; takes effect at once for new and open connections. Returns an error
  // only if listening again (leaving kRefuse) fails.
  absl::Status SetMode(Mode mode);
  Mode mode() const;

  // Delays every forwarded chunk by `delay` (0: none), keeping order.
  void SetDelay(absl::Duration delay);

  // Points the proxy at another upstream port (e.g. a restarted server); new connections go
  // there, open ones are unaffected.
  void SetUpstreamPort(int port);

  // Closes every open connection with a TCP RST, now. The proxy keeps accepting.
  void ResetAll();

  int open_connections() const;
  uint64_t connections_accepted() const { return accepted_; }
  uint64_t bytes_forwarded() const { return forwarded_; }

 private:
  struct Connection;
  FaultProxy(std::string upstream_host, int upstream_port);
  absl::Status Listen();
  void AcceptLoop();
  void Serve(std::shared_ptr<Connection> c);

  const std::string upstream_host_;
  std::atomic<int> upstream_port_;
  int port_ = 0;

  mutable absl::Mutex mu_;
  Mode mode_ ABSL_GUARDED_BY(mu_) = Mode::kPass;
  absl::Duration delay_ ABSL_GUARDED_BY(mu_);
  int listen_fd_ ABSL_GUARDED_BY(mu_) = -1;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t reset_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::shared_ptr<Connection>> connections_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);

  std::thread acceptor_;
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> forwarded_{0};
};

}  // namespace evlog::testing
