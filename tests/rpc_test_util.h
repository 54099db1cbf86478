// Helpers for tests that drive evlogd through the raw generated gRPC stubs (evlog.v1), so
// the server tests do not depend on the client library. Every call has a deadline.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "evlog/v1/evlog.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {

// The three evlog.v1 stubs over one channel.
struct EvlogStubs {
  explicit EvlogStubs(const std::string& address);
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<evlog::v1::ProducerService::Stub> producer;
  std::unique_ptr<evlog::v1::ReaderService::Stub> reader;
  std::unique_ptr<evlog::v1::AdminService::Stub> admin;
};

// A context whose deadline is `timeout` from now.
std::unique_ptr<grpc::ClientContext> Deadline(absl::Duration timeout = absl::Seconds(10));

// "CODE: message", for assertion messages.
std::string Describe(const grpc::Status& status);

grpc::Status CreateTopic(EvlogStubs& stubs, const std::string& name, int partitions = 1);

// A request whose records have `values` as values and `key` as key (timestamps 0).
evlog::v1::ProduceRequest MakeBatch(const std::string& topic, int partition,
                                    const std::vector<std::string>& values,
                                    const std::string& key = "");

// ProduceOne; the response is valid when the status is OK.
struct ProduceOutcome {
  grpc::Status status;
  evlog::v1::ProduceResponse response;
};
ProduceOutcome ProduceOne(EvlogStubs& stubs, const evlog::v1::ProduceRequest& request);

// Runs a Read to its end (use it without follow, or with end_offset / max_records).
struct ReadOutcome {
  grpc::Status status;
  std::vector<evlog::v1::Record> records;
};
ReadOutcome ReadAll(EvlogStubs& stubs, const evlog::v1::ReadRequest& request,
                    absl::Duration timeout = absl::Seconds(20));

// Like ReadAll, but hands each record to `each` as it arrives instead of keeping them all (for
// reads of millions of records). Returns the call's final status.
grpc::Status ReadEach(EvlogStubs& stubs, const evlog::v1::ReadRequest& request,
                      absl::Duration timeout,
                      const std::function<void(const evlog::v1::Record&)>& each);

// A Read request of a partition from `offset` (no follow).
evlog::v1::ReadRequest ReadFrom(const std::string& topic, int partition, int64_t offset);

// The partition end offsets of `topic` (empty if it cannot be described).
std::vector<int64_t> EndOffsets(EvlogStubs& stubs, const std::string& topic);

// Calls `condition` every 10 ms until it returns true or `timeout` passes; its last result.
bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout);

// A test suite whose tests share one evlogd, started once per suite (a server per test would
// cost a start each) and stopped after it; each test gets fresh stubs and names its topics
// after itself, so tests do not see each other's data. A suite that needs flags or set-up
// defines its own SetUpTestSuite calling StartServer(options), then checks server_.
class SharedServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { StartServer(); }
  static void TearDownTestSuite();
  void SetUp() override;

  // Starts the suite's evlogd; on failure records a fatal failure and leaves server_ null.
  static void StartServer(const ServerProcessOptions& options = {});

  // A topic name unique to the running test.
  static std::string TopicName(const std::string& suffix = "");

  inline static ServerProcess* server_ = nullptr;
  std::unique_ptr<EvlogStubs> stubs_;
};

}  // namespace evlog::testing
