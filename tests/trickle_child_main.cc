// evlog_trickle_child: the "other service" of the burst test (tests/burst_test.cc), a steady
// trickle producer in a process of its own.
//
// Why a separate process: in production the flood and the trickle come from different
// services; measured from inside the test process, the trickle's calls shared gRPC's client
// threads and the CPU scheduler's queue with the 200 flood threads, so its latency measured the
// test's own client more than evlogd's isolation.
//
// Usage: evlog_trickle_child SERVER TOPIC PERIOD_MS
// Every PERIOD_MS (a fixed schedule, whatever the latency) it produces one event to partition 0
// of TOPIC with ProduceOne; a RESOURCE_EXHAUSTED refusal is retried after 50 ms and counts in
// the call's latency. Per call it prints one line and flushes it:
//   <start, µs since the Unix epoch> <latency µs, call start to acknowledgement> <refusals> <ok>
// where ok is 1 if the call was finally acknowledged, 0 if it failed with another error.
// Runs until it is killed (the test sends SIGTERM); exits 2 on bad arguments.
#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/rpc_test_util.h"

int main(int argc, char** argv) {
  int period_ms = 0;
  if (argc != 4 || !absl::SimpleAtoi(argv[3], &period_ms) || period_ms <= 0) {
    std::fprintf(stderr, "usage: %s SERVER TOPIC PERIOD_MS\n", argv[0]);
    return 2;
  }
  const std::string topic = argv[2];
  evlog::testing::EvlogStubs stubs(argv[1]);
  const absl::Duration period = absl::Milliseconds(period_ms);
  absl::Time next = absl::Now();
  for (int64_t i = 0;; ++i) {
    absl::SleepFor(next - absl::Now());
    next += period;
    const absl::Time start = absl::Now();
    const evlog::v1::ProduceRequest request =
        evlog::testing::MakeBatch(topic, 0, {absl::StrCat("tick ", i)});
    int refusals = 0;
    bool ok = false;
    for (;;) {
      evlog::testing::ProduceOutcome outcome = evlog::testing::ProduceOne(stubs, request);
      if (outcome.status.ok()) {
        ok = true;
        break;
      }
      if (outcome.status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) break;
      ++refusals;
      absl::SleepFor(absl::Milliseconds(50));
    }
    const absl::Duration latency = absl::Now() - start;
    std::printf("%lld %lld %d %d\n", static_cast<long long>(absl::ToUnixMicros(start)),
                static_cast<long long>(absl::ToInt64Microseconds(latency)), refusals, ok ? 1 : 0);
    std::fflush(stdout);
  }
}
