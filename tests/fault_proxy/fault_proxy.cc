#include "tests/fault_proxy/fault_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace evlog::testing {

namespace {

// How often idle loops look at the mode again. Mode changes are test-driven and rare, so a
// short poll timeout is simpler than waking every connection thread explicitly.
constexpr int kPollMs = 10;
constexpr size_t kMaxBuffered = 1 << 20;  // per direction; beyond it the proxy stops reading

void CloseWithReset(int fd) {
  if (fd < 0) return;
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  close(fd);
}

int ConnectTo(const std::string& host, int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

}  // namespace

struct FaultProxy::Connection {
  int client_fd = -1;
  int upstream_fd = -1;
};

FaultProxy::FaultProxy(std::string upstream_host, int upstream_port)
    : upstream_host_(std::move(upstream_host)), upstream_port_(upstream_port) {}

absl::StatusOr<std::unique_ptr<FaultProxy>> FaultProxy::Start(const std::string& upstream_host,
                                                              int upstream_port) {
  std::unique_ptr<FaultProxy> proxy(new FaultProxy(upstream_host, upstream_port));
  {
    absl::MutexLock l(&proxy->mu_);
    absl::Status s = proxy->Listen();
    if (!s.ok()) return s;
  }
  FaultProxy* p = proxy.get();
  proxy->acceptor_ = std::thread([p] { p->AcceptLoop(); });
  return proxy;
}

absl::Status FaultProxy::Listen() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", strerror(errno)));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 1024) != 0) {
    const std::string err = strerror(errno);
    close(fd);
    return absl::UnavailableError(
        absl::StrCat("fault proxy cannot listen on 127.0.0.1:", port_, ": ", err));
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  listen_fd_ = fd;
  return absl::OkStatus();
}

FaultProxy::~FaultProxy() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  acceptor_.join();
  {
    absl::MutexLock l(&mu_);
    threads.swap(threads_);
    if (listen_fd_ >= 0) close(listen_fd_);
    listen_fd_ = -1;
  }
  for (std::thread& t : threads) t.join();
}

absl::Status FaultProxy::SetMode(Mode mode) {
  absl::MutexLock l(&mu_);
  if (mode == Mode::kRefuse && listen_fd_ >= 0) {
    // shutdown() stops listening at once even while the accept loop is polling the socket
    // (close() alone would leave it listening until that poll returns).
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);  // nothing listens: connect() is refused by the kernel
    listen_fd_ = -1;
  } else if (mode != Mode::kRefuse && listen_fd_ < 0) {
    absl::Status s = Listen();
    if (!s.ok()) return s;
  }
  mode_ = mode;
  return absl::OkStatus();
}

FaultProxy::Mode FaultProxy::mode() const {
  absl::MutexLock l(&mu_);
  return mode_;
}

void FaultProxy::SetDelay(absl::Duration delay) {
  absl::MutexLock l(&mu_);
  delay_ = delay;
}

void FaultProxy::SetUpstreamPort(int port) { upstream_port_ = port; }

void FaultProxy::ResetAll() {
  absl::MutexLock l(&mu_);
  ++reset_epoch_;
}

int FaultProxy::open_connections() const {
  absl::MutexLock l(&mu_);
  return static_cast<int>(connections_.size());
}

void FaultProxy::AcceptLoop() {
  for (;;) {
    int listen_fd;
    {
      absl::MutexLock l(&mu_);
      if (stop_) return;
      listen_fd = listen_fd_;
    }
    pollfd p{listen_fd, POLLIN, 0};
    if (listen_fd < 0 || poll(&p, 1, kPollMs) <= 0) {
      if (listen_fd < 0) poll(nullptr, 0, kPollMs);
      continue;
    }
    absl::MutexLock l(&mu_);
    if (listen_fd_ != listen_fd) continue;  // closed by SetMode meanwhile
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ++accepted_;
    auto c = std::make_shared<Connection>();
    c->client_fd = fd;
    connections_.push_back(c);
    threads_.emplace_back([this, c] { Serve(c); });
  }
}

void FaultProxy::Serve(std::shared_ptr<Connection> c) {
  struct Chunk {
    absl::Time release;
    std::string bytes;
    size_t sent = 0;
  };
  std::deque<Chunk> to_upstream, to_client;
  size_t buffered_up = 0, buffered_down = 0;
  uint64_t epoch;
  {
    absl::MutexLock l(&mu_);
    epoch = reset_epoch_;
  }
  bool reset = false;
  char buf[64 << 10];
  for (;;) {
    Mode mode;
    absl::Duration delay;
    {
      absl::MutexLock l(&mu_);
      if (stop_ || reset_epoch_ != epoch) {
        reset = true;
        break;
      }
      mode = mode_;
      delay = delay_;
    }
    const bool flowing = mode != Mode::kBlackhole;
    if (flowing && c->upstream_fd < 0) {
      c->upstream_fd = ConnectTo(upstream_host_, upstream_port_);
      if (c->upstream_fd < 0) break;  // upstream down: the client sees its connection close
    }
    const absl::Time now = absl::Now();
    pollfd fds[2] = {{c->client_fd, 0, 0}, {c->upstream_fd, 0, 0}};
    if (flowing) {
      if (buffered_up < kMaxBuffered) fds[0].events |= POLLIN;
      if (buffered_down < kMaxBuffered) fds[1].events |= POLLIN;
      if (!to_client.empty() && to_client.front().release <= now) fds[0].events |= POLLOUT;
      if (!to_upstream.empty() && to_upstream.front().release <= now) fds[1].events |= POLLOUT;
    }
    int timeout = kPollMs;
    for (const auto* q : {&to_client, &to_upstream}) {
      if (flowing && !q->empty() && q->front().release > now) {
        timeout = std::min<int>(
            timeout, static_cast<int>(absl::ToInt64Milliseconds(q->front().release - now)) + 1);
      }
    }
    if (poll(fds, c->upstream_fd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR) break;
    if (!flowing) continue;

    bool closed = false;
    auto pump_in = [&](const pollfd& p, std::deque<Chunk>& q, size_t& buffered) {
      if ((p.revents & (POLLIN | POLLHUP | POLLERR)) == 0) return;
      ssize_t n = read(p.fd, buf, sizeof(buf));
      if (n <= 0) {
        closed = true;
        return;
      }
      q.push_back({absl::Now() + delay, std::string(buf, n)});
      buffered += n;
    };
    auto pump_out = [&](const pollfd& p, std::deque<Chunk>& q, size_t& buffered) {
      if ((p.revents & POLLOUT) == 0 || q.empty()) return;
      Chunk& ch = q.front();
      ssize_t n = send(p.fd, ch.bytes.data() + ch.sent, ch.bytes.size() - ch.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) closed = true;
        return;
      }
      ch.sent += n;
      buffered -= n;
      forwarded_ += n;
      if (ch.sent == ch.bytes.size()) q.pop_front();
    };
    pump_in(fds[0], to_upstream, buffered_up);
    pump_in(fds[1], to_client, buffered_down);
    pump_out(fds[0], to_client, buffered_down);
    pump_out(fds[1], to_upstream, buffered_up);
    if (closed) break;
  }
  if (reset) {
    CloseWithReset(c->client_fd);
    CloseWithReset(c->upstream_fd);
  } else {
    close(c->client_fd);
    if (c->upstream_fd >= 0) close(c->upstream_fd);
  }
  absl::MutexLock l(&mu_);
  std::erase(connections_, c);
}

}  // namespace evlog::testing
