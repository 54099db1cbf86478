// The idempotent Producer through faults: a real evlogd behind the tests' FaultProxy, with the
// server SIGKILLed and restarted, connections reset, and the path silently blackholed while a
// producer keeps sending. Every record must end up stored exactly once, in Send order per
// partition, and Flush must report success.
#include <atomic>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/admin.h"
#include "client/producer.h"
#include "client/reader.h"
#include "gtest/gtest.h"
#include "tests/fault_proxy/fault_proxy.h"
#include "tests/testing/server_process.h"

namespace evlog::client {
namespace {

using evlog::testing::FaultProxy;
using evlog::testing::ServerProcess;

int PortOf(const std::string& address) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) << address;
  return port;
}

// Every value stored in `partition`, in offset order.
std::vector<std::string> Values(const std::string& address, const std::string& topic,
                                int32_t partition) {
  auto reader = Reader::Create(address);
  auto stream = reader->Open({.topic = topic, .partition = partition, .offset = 0});
  std::vector<std::string> values;
  std::vector<ConsumedRecord> chunk;
  while (stream->Next(&chunk)) {
    for (ConsumedRecord& r : chunk) values.push_back(std::move(r.value));
  }
  absl::Status s = stream->Finish();
  EXPECT_TRUE(s.ok()) << s;
  return values;
}

// Waits until `done` or `deadline`; returns done().
template <typename F>
bool WaitFor(F done, absl::Time deadline) {
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

class ProducerResilienceTest : public ::testing::Test {
 protected:
  static constexpr int kPartitions = 2;

  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto proxy = FaultProxy::Start("127.0.0.1", PortOf(server_->address()));
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = *std::move(proxy);
    auto admin = Admin::Create(server_->address(), {.timeout = absl::Seconds(30)});
    auto topic = admin->CreateTopic("t", {.partitions = kPartitions});
    ASSERT_TRUE(topic.ok()) << topic.status();
  }

  // Sends `count` records ("p<partition>-<i>", partitions alternating) from a thread, counting
  // acknowledgements in acked_; Join() waits for the thread.
  void StartSending(Producer* producer, int count) {
    sender_ = std::thread([this, producer, count] {
      for (int i = 0; i < count; ++i) {
        const int32_t partition = i % kPartitions;
        absl::Status s =
            producer->Send("t", {.value = absl::StrCat("p", partition, "-", i / kPartitions)},
                           partition, [this](absl::StatusOr<RecordMetadata> r) {
                             if (r.ok()) acked_.fetch_add(1);
                           });
        if (!s.ok()) {
          ADD_FAILURE() << "Send " << i << ": " << s;
          return;
        }
        if (i % 500 == 0) absl::SleepFor(absl::Milliseconds(5));  // a steady stream
      }
    });
  }
  void Join() {
    if (sender_.joinable()) sender_.join();
  }
  void TearDown() override { Join(); }

  // Every partition holds exactly its records, once each, in Send order.
  void ExpectExactlyOnceInOrder(int count) {
    for (int32_t p = 0; p < kPartitions; ++p) {
      std::vector<std::string> values = Values(server_->address(), "t", p);
      const int expected = count / kPartitions + (p < count % kPartitions ? 1 : 0);
      ASSERT_EQ(static_cast<int>(values.size()), expected) << "partition " << p;
      for (int i = 0; i < expected; ++i) {
        ASSERT_EQ(values[i], absl::StrCat("p", p, "-", i)) << "partition " << p << " offset " << i;
      }
    }
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<FaultProxy> proxy_;
  std::thread sender_;
  std::atomic<int64_t> acked_{0};
};

TEST_F(ProducerResilienceTest, ServerKilledMidStreamEveryRecordStoredOnceInOrder) {
  constexpr int kCount = 40000;
  auto producer = Producer::Create(proxy_->address(), {.batch_max_records = 200,
                                                       .ack_timeout = absl::Seconds(5),
                                                       .delivery_timeout = absl::Minutes(2)});
  StartSending(producer.get(), kCount);
  ASSERT_TRUE(
      WaitFor([&] { return acked_.load() >= kCount / 4; }, absl::Now() + absl::Seconds(60)));
  server_->Kill();  // batches in flight now have unknown outcomes
  ASSERT_TRUE(server_->Restart().ok()) << server_->LogTail();
  proxy_->SetUpstreamPort(PortOf(server_->address()));
  Join();
  absl::Status flushed = producer->Flush(absl::Now() + absl::Seconds(90));
  ASSERT_TRUE(flushed.ok()) << flushed;
  const ProducerStats stats = producer->Stats();
  std::cout << "retried " << stats.records_retried << " records in " << stats.batches_retried
            << " batches over " << stats.streams_opened << " streams\n";
  EXPECT_EQ(stats.records_acknowledged, kCount);
  EXPECT_EQ(stats.records_failed, 0);
  EXPECT_GE(stats.streams_opened, 2);
  ExpectExactlyOnceInOrder(kCount);
}

TEST_F(ProducerResilienceTest, ResetConnectionsAreResentWithoutDuplicates) {
  constexpr int kCount = 30000;
  auto producer = Producer::Create(proxy_->address(), {.batch_max_records = 100});
  StartSending(producer.get(), kCount);
  for (int round = 1; round <= 5; ++round) {
    ASSERT_TRUE(WaitFor([&] { return acked_.load() >= round * kCount / 7; },
                        absl::Now() + absl::Seconds(60)));
    proxy_->ResetAll();
  }
  Join();
  absl::Status flushed = producer->Flush(absl::Now() + absl::Seconds(90));
  ASSERT_TRUE(flushed.ok()) << flushed;
  const ProducerStats stats = producer->Stats();
  std::cout << "retried " << stats.records_retried << " records in " << stats.batches_retried
            << " batches over " << stats.streams_opened << " streams\n";
  EXPECT_GE(stats.streams_opened, 2);
  ExpectExactlyOnceInOrder(kCount);
}

// A firewall that silently drops packets: nothing is refused, nothing is answered. The ack
// timeout (and the channel's keepalive) notice it; resends go through once the path is back.
TEST_F(ProducerResilienceTest, BlackholedPathIsNoticedAndResentOnceItPasses) {
  constexpr int kCount = 20000;
  auto producer = Producer::Create(proxy_->address(), {.batch_max_records = 100,
                                                       .ack_timeout = absl::Seconds(2),
                                                       .delivery_timeout = absl::Minutes(2)});
  StartSending(producer.get(), kCount);
  ASSERT_TRUE(
      WaitFor([&] { return acked_.load() >= kCount / 4; }, absl::Now() + absl::Seconds(60)));
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kBlackhole).ok());
  const int64_t acked_at_cut = acked_.load();
  absl::SleepFor(absl::Seconds(5));  // the outage itself, not a wait for a condition
  // Nothing can have been acknowledged through a blackhole beyond what was already answered.
  EXPECT_LE(acked_.load() - acked_at_cut, 8 * 100);
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
  Join();
  absl::Status flushed = producer->Flush(absl::Now() + absl::Seconds(90));
  ASSERT_TRUE(flushed.ok()) << flushed;
  const ProducerStats stats = producer->Stats();
  EXPECT_GT(stats.records_retried, 0);
  EXPECT_EQ(stats.records_failed, 0);
  ExpectExactlyOnceInOrder(kCount);
}

// Without idempotence a batch whose outcome is unknown cannot be resent safely: it fails.
TEST_F(ProducerResilienceTest, NonIdempotentProducerFailsUnknownOutcomes) {
  auto producer =
      Producer::Create(proxy_->address(), {.ack_timeout = absl::Seconds(1), .idempotent = false});
  ASSERT_TRUE(producer->Send("t", {.value = "first"}, 0).ok());
  ASSERT_TRUE(producer->Flush(absl::Now() + absl::Seconds(30)).ok());
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kBlackhole).ok());
  ASSERT_TRUE(producer->Send("t", {.value = "lost?"}, 0).ok());
  absl::Status flushed = producer->Flush(absl::Now() + absl::Seconds(60));
  EXPECT_EQ(flushed.code(), absl::StatusCode::kDeadlineExceeded) << flushed;
  EXPECT_EQ(producer->Stats().records_retried, 0);
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
}

}  // namespace
}  // namespace evlog::client
