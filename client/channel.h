// Channels to evlogd, configured the same way for every client class.
//
// Keepalive: the channel pings the server every 10 s, also without calls in progress, and
// closes the connection if a ping is not answered within 5 s. A blackholed connection (a
// firewall dropping packets silently) is thus noticed within ~15 s even when no call has a
// deadline near. The server allows pings every 5 s or slower (see evlog.proto).
//
// Reconnects: after a failed connection attempt gRPC waits a backoff before the next one,
// growing by 1.6x from `reconnect_initial` up to `reconnect_max`, with +-20 % jitter (gRPC's
// own), and gives each attempt `connect_timeout`. gRPC's default cap is 120 s, which would leave
// a producer cut off for minutes idle for up to two more after the path is back; ours is 10 s,
// and the jitter spreads thousands of clients coming back at once over that window.
#pragma once

#include <memory>
#include <string>

#include <grpcpp/channel.h>

#include "absl/time/time.h"

namespace evlog::client {

struct ChannelOptions {
  // Interval between keepalive pings. Default: 10 s. Must stay >= 5 s (the server's minimum).
  absl::Duration keepalive_time = absl::Seconds(10);
  // How long a ping may go unanswered before the connection is closed. Default: 5 s.
  absl::Duration keepalive_timeout = absl::Seconds(5);
  // Largest message accepted from the server. Default: 64 MiB (a ReadResponse holds at most
  // max(4 MiB, the server's record limit + 64 KiB)).
  int max_receive_message_bytes = 64 << 20;
  // First and longest wait between connection attempts (see above). Defaults: 250 ms, 10 s.
  absl::Duration reconnect_initial = absl::Milliseconds(250);
  absl::Duration reconnect_max = absl::Seconds(10);
  // The time a connection attempt (TCP and HTTP/2 handshake) may take; a blackholed path
  // accepts but never answers, so this bounds each attempt. Default: 5 s.
  absl::Duration connect_timeout = absl::Seconds(5);
};

// An insecure (plaintext) channel to `target` ("HOST:PORT"). Connects lazily: creating it never
// fails and never blocks; the first call reports an unreachable server as UNAVAILABLE.
std::shared_ptr<grpc::Channel> CreateEvlogChannel(const std::string& target,
                                                  const ChannelOptions& options = {});

}  // namespace evlog::client
