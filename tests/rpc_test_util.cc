#include "tests/rpc_test_util.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace evlog::testing {

EvlogStubs::EvlogStubs(const std::string& address)
    : channel(grpc::CreateChannel(address, grpc::InsecureChannelCredentials())),
      producer(evlog::v1::ProducerService::NewStub(channel)),
      reader(evlog::v1::ReaderService::NewStub(channel)),
      admin(evlog::v1::AdminService::NewStub(channel)) {}

std::unique_ptr<grpc::ClientContext> Deadline(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

std::string Describe(const grpc::Status& status) {
  return absl::StrCat(static_cast<int>(status.error_code()), ": ", status.error_message());
}

grpc::Status CreateTopic(EvlogStubs& stubs, const std::string& name, int partitions) {
  evlog::v1::CreateTopicRequest request;
  request.set_name(name);
  request.set_partitions(partitions);
  evlog::v1::CreateTopicResponse response;
  return stubs.admin->CreateTopic(Deadline().get(), request, &response);
}

evlog::v1::ProduceRequest MakeBatch(const std::string& topic, int partition,
                                    const std::vector<std::string>& values,
                                    const std::string& key) {
  evlog::v1::ProduceRequest request;
  request.set_topic(topic);
  request.set_partition(partition);
  for (const std::string& value : values) {
    evlog::v1::Record* record = request.add_records();
    record->set_key(key);
    record->set_value(value);
  }
  return request;
}

ProduceOutcome ProduceOne(EvlogStubs& stubs, const evlog::v1::ProduceRequest& request) {
  ProduceOutcome outcome;
  outcome.status = stubs.producer->ProduceOne(Deadline().get(), request, &outcome.response);
  return outcome;
}

ReadOutcome ReadAll(EvlogStubs& stubs, const evlog::v1::ReadRequest& request,
                    absl::Duration timeout) {
  ReadOutcome outcome;
  outcome.status = ReadEach(stubs, request, timeout, [&](const evlog::v1::Record& record) {
    outcome.records.push_back(record);
  });
  return outcome;
}

grpc::Status ReadEach(EvlogStubs& stubs, const evlog::v1::ReadRequest& request,
                      absl::Duration timeout,
                      const std::function<void(const evlog::v1::Record&)>& each) {
  auto context = Deadline(timeout);
  auto reader = stubs.reader->Read(context.get(), request);
  evlog::v1::ReadResponse response;
  while (reader->Read(&response)) {
    for (const auto& record : response.records()) each(record);
  }
  return reader->Finish();
}

evlog::v1::ReadRequest ReadFrom(const std::string& topic, int partition, int64_t offset) {
  evlog::v1::ReadRequest request;
  request.set_topic(topic);
  request.set_partition(partition);
  request.set_offset(offset);
  return request;
}

std::vector<int64_t> EndOffsets(EvlogStubs& stubs, const std::string& topic) {
  evlog::v1::DescribeTopicRequest request;
  request.set_name(topic);
  evlog::v1::DescribeTopicResponse response;
  std::vector<int64_t> ends;
  if (!stubs.admin->DescribeTopic(Deadline().get(), request, &response).ok()) return ends;
  for (const auto& p : response.topic().partitions()) ends.push_back(p.end_offset());
  return ends;
}

bool WaitFor(const std::function<bool()>& condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (condition()) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

void SharedServerTest::StartServer(const ServerProcessOptions& options) {
  auto server = ServerProcess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  server_ = server->release();
}

void SharedServerTest::TearDownTestSuite() {
  delete server_;
  server_ = nullptr;
}

void SharedServerTest::SetUp() {
  ASSERT_NE(server_, nullptr) << "the suite's evlogd did not start";
  stubs_ = std::make_unique<EvlogStubs>(server_->address());
}

std::string SharedServerTest::TopicName(const std::string& suffix) {
  return ::testing::UnitTest::GetInstance()->current_test_info()->name() + suffix;
}

}  // namespace evlog::testing
