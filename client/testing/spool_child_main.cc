// spool_child: a process for the spool's crash test (client/spool_test.cc). It appends batches
// to the spool in DIR forever, alternating between two partitions, and after each append
// returns (the batch is fsynced) prints one line
//   durable ID PARTITION BASE_SEQUENCE RECORDS
// to stdout, flushed; the test SIGKILLs it at some point and checks that every batch it
// reported durable is in the spool after a reopen, with the same id and sequence.
//
// Usage: spool_child DIR
#include <cstdio>
#include <string>

#include "absl/time/time.h"
#include "client/spool.h"
#include "evlog/v1/evlog.pb.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: spool_child DIR\n");
    return 2;
  }
  auto spool = evlog::client::Spool::Open(argv[1]);
  if (!spool.ok()) {
    std::fprintf(stderr, "spool_child: %s\n", std::string(spool.status().message()).c_str());
    return 1;
  }
  for (int i = 0;; ++i) {
    evlog::v1::ProduceRequest request;
    const int count = 1 + i % 7;
    for (int r = 0; r < count; ++r) {
      request.add_records()->set_value("event " + std::to_string(i) + "." + std::to_string(r));
    }
    evlog::client::NewSpoolBatch batch{"crash", i % 2, count, request.SerializeAsString()};
    auto appended = (*spool)->Append(std::move(batch), absl::InfiniteFuture());
    if (!appended.ok()) {
      std::fprintf(stderr, "spool_child: %s\n", std::string(appended.status().message()).c_str());
      return 1;
    }
    std::printf("durable %llu %d %d %d\n", static_cast<unsigned long long>(appended->id), i % 2,
                appended->base_sequence, count);
    std::fflush(stdout);
  }
}
