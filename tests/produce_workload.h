// A continuous, pipelined produce workload for the crash and shutdown tests: one thread per
// partition writes small batches over a Produce stream with several in flight, remembers every
// acknowledged batch, and reconnects (to the current address) whenever its stream breaks.
// ExpectAllAcknowledgedPresent then checks the log against what was acknowledged.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "tests/rpc_test_util.h"

namespace evlog::testing {

// The address of the current server run, updated on restart. Thread-safe.
class AddressBook {
 public:
  void Set(const std::string& address) {
    absl::MutexLock lock(&mu_);
    address_ = address;
  }
  std::string Get() const {
    absl::MutexLock lock(&mu_);
    return address_;
  }

 private:
  mutable absl::Mutex mu_;
  std::string address_ ABSL_GUARDED_BY(mu_);
};

// A batch the server acknowledged: its offsets and the values it holds.
struct AckedBatch {
  int64_t base_offset = 0;
  std::vector<std::string> values;
};

// Produces to one partition until Stop(). Thread-safe accessors; acked() after Stop().
class PartitionProducer {
 public:
  // `addresses` must outlive the producer. `window`: requests in flight per stream.
  PartitionProducer(const AddressBook* addresses, std::string topic, int partition, int window);
  ~PartitionProducer();

  void Start();
  // Stops writing, waits for the answers to what was sent (on a live stream), joins.
  void Stop();

  int64_t acked_records() const { return acked_records_.load(); }
  // Streams that have ended (broken or finished) and whose answers were all processed.
  int64_t streams_ended() const { return streams_ended_.load(); }
  // One past the highest offset acknowledged so far (0 if none).
  int64_t acked_end_offset() const { return acked_end_offset_.load(); }
  // How streams ended, by gRPC status code (e.g. UNAVAILABLE when the server drained).
  std::map<int, int> stream_endings() const;
  // Problems seen (responses out of order, offsets going backwards); empty if none.
  std::vector<std::string> violations() const;
  // Every acknowledged batch, in acknowledgement order. REQUIRES: Stop() returned.
  const std::vector<AckedBatch>& acked() const { return acked_; }
  int partition() const { return partition_; }

 private:
  void Run();
  void RunStream(uint64_t* sequence);

  const AddressBook* const addresses_;
  const std::string topic_;
  const int partition_;
  const int window_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acked_records_{0};
  std::atomic<int64_t> acked_end_offset_{0};
  std::atomic<int64_t> streams_ended_{0};
  std::thread thread_;
  std::vector<AckedBatch> acked_;  // written by the producer thread only
  mutable absl::Mutex mu_;
  std::map<int, int> endings_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> violations_ ABSL_GUARDED_BY(mu_);
};

// Reads the whole partition from the server at `address` and checks (with gtest
// expectations) that offsets are dense from 0 and every acknowledged batch is at its offsets
// with its values. Returns the number of records in the partition.
int64_t ExpectAllAcknowledgedPresent(const std::string& address, const std::string& topic,
                                     const PartitionProducer& producer);

}  // namespace evlog::testing
