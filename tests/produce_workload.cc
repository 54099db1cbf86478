#include "tests/produce_workload.h"

#include <algorithm>
#include <deque>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace evlog::testing {

PartitionProducer::PartitionProducer(const AddressBook* addresses, std::string topic, int partition,
                                     int window)
    : addresses_(addresses), topic_(std::move(topic)), partition_(partition), window_(window) {}

PartitionProducer::~PartitionProducer() { Stop(); }

void PartitionProducer::Start() {
  thread_ = std::thread([this] { Run(); });
}

void PartitionProducer::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::map<int, int> PartitionProducer::stream_endings() const {
  absl::MutexLock lock(&mu_);
  return endings_;
}

std::vector<std::string> PartitionProducer::violations() const {
  absl::MutexLock lock(&mu_);
  return violations_;
}

void PartitionProducer::Run() {
  uint64_t sequence = 0;
  while (!stop_) {
    RunStream(&sequence);
    if (!stop_) absl::SleepFor(absl::Milliseconds(20));  // the server restarts meanwhile
  }
}

void PartitionProducer::RunStream(uint64_t* sequence) {
  EvlogStubs stubs(addresses_->Get());
  auto context = Deadline(absl::Seconds(60));
  auto stream = stubs.producer->Produce(context.get());
  struct Pending {
    uint64_t id;
    std::vector<std::string> values;
  };
  std::deque<Pending> in_flight;
  auto record_violation = [&](std::string what) {
    absl::MutexLock lock(&mu_);
    violations_.push_back(std::move(what));
  };
  auto handle = [&](const v1::ProduceResponse& response) {
    if (in_flight.empty() || response.request_id() != in_flight.front().id) {
      record_violation(absl::StrCat("partition ", partition_, ": response ", response.request_id(),
                                    " out of request order"));
      return;
    }
    Pending pending = std::move(in_flight.front());
    in_flight.pop_front();
    if (response.has_error()) return;  // not acknowledged (e.g. UNAVAILABLE while draining)
    if (!acked_.empty() &&
        response.base_offset() <
            acked_.back().base_offset + static_cast<int64_t>(acked_.back().values.size())) {
      record_violation(absl::StrCat(
          "partition ", partition_, ": base offset ", response.base_offset(), " (request ",
          response.request_id(), ", ", pending.values.size(), " records) went backwards: ",
          "the previous acknowledgement was base ", acked_.back().base_offset, " with ",
          acked_.back().values.size(), " records, value ", acked_.back().values.front()));
    }
    acked_records_ += static_cast<int64_t>(pending.values.size());
    acked_end_offset_ = std::max<int64_t>(
        acked_end_offset_, response.base_offset() + static_cast<int64_t>(pending.values.size()));
    acked_.push_back({response.base_offset(), std::move(pending.values)});
  };

  bool broken = false;
  v1::ProduceResponse response;
  while (!stop_ && !broken) {
    const uint64_t id = (*sequence)++;
    std::vector<std::string> values;
    for (uint64_t i = 0; i <= id % 4; ++i) {
      values.push_back(absl::StrCat("p", partition_, "-s", id, "-", i));
    }
    v1::ProduceRequest request = MakeBatch(topic_, partition_, values);
    request.set_request_id(id);
    if (!stream->Write(request)) {
      broken = true;
      break;
    }
    in_flight.push_back({id, std::move(values)});
    while (static_cast<int>(in_flight.size()) >= window_) {
      if (!stream->Read(&response)) {
        broken = true;
        break;
      }
      handle(response);
    }
  }
  if (!broken) stream->WritesDone();
  while (stream->Read(&response)) handle(response);
  const grpc::Status status = stream->Finish();
  {
    absl::MutexLock lock(&mu_);
    ++endings_[static_cast<int>(status.error_code())];
  }
  ++streams_ended_;
}

int64_t ExpectAllAcknowledgedPresent(const std::string& address, const std::string& topic,
                                     const PartitionProducer& producer) {
  EvlogStubs stubs(address);
  ReadOutcome read = ReadAll(stubs, ReadFrom(topic, producer.partition(), 0), absl::Seconds(60));
  EXPECT_TRUE(read.status.ok()) << Describe(read.status);
  for (size_t i = 0; i < read.records.size(); ++i) {
    if (read.records[i].offset() != static_cast<int64_t>(i)) {
      ADD_FAILURE() << "partition " << producer.partition() << ": offset "
                    << read.records[i].offset() << " at position " << i << " (not dense)";
      break;
    }
  }
  int missing = 0;
  for (const AckedBatch& batch : producer.acked()) {
    for (size_t i = 0; i < batch.values.size(); ++i) {
      const int64_t offset = batch.base_offset + static_cast<int64_t>(i);
      if (offset >= static_cast<int64_t>(read.records.size()) ||
          read.records[offset].value() != batch.values[i]) {
        if (++missing <= 5) {
          ADD_FAILURE() << "partition " << producer.partition() << ": acknowledged record "
                        << batch.values[i] << " is not at offset " << offset;
        }
      }
    }
  }
  EXPECT_EQ(missing, 0) << "acknowledged records missing in partition " << producer.partition();
  for (const std::string& violation : producer.violations()) ADD_FAILURE() << violation;
  return static_cast<int64_t>(read.records.size());
}

}  // namespace evlog::testing
