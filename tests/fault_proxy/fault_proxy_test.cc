#include "tests/fault_proxy/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace evlog::testing {
namespace {

// A loopback echo server: echoes every byte back on each connection.
class EchoServer {
 public:
  EchoServer() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    listen(fd_, 64);
    socklen_t len = sizeof(addr);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        workers_.emplace_back([c] {
          char buf[4096];
          ssize_t n;
          while ((n = read(c, buf, sizeof(buf))) > 0) {
            if (send(c, buf, n, MSG_NOSIGNAL) != n) break;
          }
          close(c);
        });
      }
    });
  }
  ~EchoServer() {
    shutdown(fd_, SHUT_RDWR);
    close(fd_);
    thread_.join();
    for (auto& w : workers_) w.detach();  // they end when their peers close
  }
  int port() const { return port_; }

 private:
  int fd_;
  int port_;
  std::thread thread_;
  std::vector<std::thread> workers_;
};

// Connects to 127.0.0.1:port; returns the fd or -errno.
int Connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return -err;
  }
  return fd;
}

// Reads exactly n bytes within timeout_ms; returns what arrived (possibly less).
std::string ReadN(int fd, size_t n, int timeout_ms) {
  std::string out;
  char buf[4096];
  while (out.size() < n) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) break;
    ssize_t got = read(fd, buf, std::min(sizeof(buf), n - out.size()));
    if (got <= 0) break;
    out.append(buf, got);
  }
  return out;
}

class FaultProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto p = FaultProxy::Start("127.0.0.1", echo_.port());
    ASSERT_TRUE(p.ok()) << p.status();
    proxy_ = *std::move(p);
  }
  EchoServer echo_;
  std::unique_ptr<FaultProxy> proxy_;
};

TEST_F(FaultProxyTest, PassForwardsBothWays) {
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "hello", 5, 0), 5);
  EXPECT_EQ(ReadN(fd, 5, 10000), "hello");
  EXPECT_EQ(proxy_->connections_accepted(), 1u);
  close(fd);
}

TEST_F(FaultProxyTest, RefuseRefusesNewConnectionsOnly) {
  int open = Connect(proxy_->port());
  ASSERT_GE(open, 0);
  ASSERT_EQ(send(open, "0", 1, 0), 1);  // make sure the proxy accepted it
  ASSERT_EQ(ReadN(open, 1, 10000), "0");
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kRefuse).ok());
  EXPECT_EQ(Connect(proxy_->port()), -ECONNREFUSED);
  ASSERT_EQ(send(open, "ab", 2, 0), 2);
  EXPECT_EQ(ReadN(open, 2, 10000), "ab");
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
  int again = Connect(proxy_->port());
  ASSERT_GE(again, 0);
  ASSERT_EQ(send(again, "cd", 2, 0), 2);
  EXPECT_EQ(ReadN(again, 2, 10000), "cd");
  close(open);
  close(again);
}

TEST_F(FaultProxyTest, BlackholeHoldsBytesUntilThePathReturns) {
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "x", 1, 0), 1);
  ASSERT_EQ(ReadN(fd, 1, 10000), "x");
  // The echo's bytes are counted just after they are sent; wait for the count to settle.
  for (absl::Time deadline = absl::Now() + absl::Seconds(10);
       proxy_->bytes_forwarded() < 2 && absl::Now() < deadline;) {
    poll(nullptr, 0, 1);
  }
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kBlackhole).ok());
  const uint64_t forwarded = proxy_->bytes_forwarded();
  ASSERT_EQ(forwarded, 2u);
  ASSERT_EQ(send(fd, "lost?", 5, 0), 5);
  // A new connection is accepted but answers nothing either.
  int fresh = Connect(proxy_->port());
  ASSERT_GE(fresh, 0);
  ASSERT_EQ(send(fresh, "yo", 2, 0), 2);
  EXPECT_EQ(ReadN(fd, 5, 300), "");
  EXPECT_EQ(proxy_->bytes_forwarded(), forwarded);
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
  EXPECT_EQ(ReadN(fd, 5, 10000), "lost?");  // nothing was dropped, only held
  EXPECT_EQ(ReadN(fresh, 2, 10000), "yo");
  close(fd);
  close(fresh);
}

TEST_F(FaultProxyTest, ResetAllSendsRst) {
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(send(fd, "x", 1, 0), 1);
  ASSERT_EQ(ReadN(fd, 1, 10000), "x");
  proxy_->ResetAll();
  pollfd p{fd, POLLIN, 0};
  ASSERT_EQ(poll(&p, 1, 10000), 1);
  char c;
  EXPECT_EQ(read(fd, &c, 1), -1);
  EXPECT_EQ(errno, ECONNRESET);
  close(fd);
  // New connections work afterwards.
  int again = Connect(proxy_->port());
  ASSERT_GE(again, 0);
  ASSERT_EQ(send(again, "y", 1, 0), 1);
  EXPECT_EQ(ReadN(again, 1, 10000), "y");
  close(again);
}

TEST_F(FaultProxyTest, DelayKeepsBytesAndOrder) {
  proxy_->SetDelay(absl::Milliseconds(50));
  int fd = Connect(proxy_->port());
  ASSERT_GE(fd, 0);
  std::string sent;
  for (int i = 0; i < 20; ++i) {
    std::string part = std::to_string(i) + ",";
    ASSERT_EQ(send(fd, part.data(), part.size(), 0), static_cast<ssize_t>(part.size()));
    sent += part;
  }
  EXPECT_EQ(ReadN(fd, sent.size(), 10000), sent);
  close(fd);
}

}  // namespace
}  // namespace evlog::testing
