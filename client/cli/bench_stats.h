// What `evlog bench` measures and how it reports it: a lock-free latency histogram, the
// result of a run (as a human summary or one JSON object), and a progress bar for terminals.
//
// The histogram keeps nanosecond values in log-linear buckets (64 per power of two, so a
// reported percentile is within 1.6% of the true value) in a fixed array of atomic counters:
// recording costs one relaxed fetch_add and no allocation, so the producer's callback threads
// can record every event of a multi-million-event run without a lock.
//
// Thread safety: LatencyHistogram::Record may be called from any number of threads at once;
// Percentile/Count/Merge are meant for after the recording threads are done (they give a
// consistent-enough snapshot while recording goes on). BenchResult is plain data. Progress
// runs its own thread; Add may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace evlog::cli {

class LatencyHistogram {
 public:
  LatencyHistogram();

  // Adds one observation of `nanos` (negative values count as 0).
  void Record(int64_t nanos);

  // Adds every observation of `other` to this one.
  void Merge(const LatencyHistogram& other);

  int64_t Count() const;

  // The value (in nanoseconds, the middle of its bucket) below which a fraction `q` (0..1) of
  // the observations lie; nullopt if there are none.
  std::optional<int64_t> Percentile(double q) const;
  std::optional<int64_t> Max() const;

  // Bucket arithmetic, exposed for tests: the bucket of a value and a bucket's value range.
  static int BucketOf(int64_t nanos);
  static int64_t BucketLow(int bucket);
  static int64_t BucketHigh(int bucket);  // exclusive
  static constexpr int kSubBits = 6;
  static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;

 private:
  std::unique_ptr<std::atomic<int64_t>[]> counts_;
};

// The outcome of one bench run, as printed.
struct BenchResult {
  std::string mode;  // "produce", "consume" or "e2e"
  std::string topic;
  std::string latency;  // what the percentiles measure: "ack_per_event", "end_to_end", "none"
  int64_t events = 0;   // events acknowledged (produce), read (consume) or received (e2e)
  int64_t bytes = 0;    // value bytes of those events
  double seconds = 0;
  int64_t errors = 0;  // events that failed (or, for e2e, that were never received)
  std::optional<double> p50_ms, p99_ms, p999_ms, max_ms;
  // Run parameters, echoed for scripts; -1 / 0 when they do not apply.
  int32_t producers = 0;
  int32_t size = 0;
  int32_t partitions = 0;
  double rate = 0;
  int64_t batches = 0;  // produce requests sent (produce, e2e)
  // With --rate (produce, e2e): how late the Send calls were against the evenly spaced
  // schedule (bench_pacer.h), p99 and max, in ms; absent without a rate. Up to the pacing tick
  // (1 ms) is by design; more means the load generator did not keep the rate.
  std::optional<double> schedule_lag_p99_ms, schedule_lag_max_ms;
  // produce, e2e: CPU time (user + system) the bench process itself used while timed, in
  // seconds; with `seconds`, how many cores the load generator took from the machine (it
  // shares them with the server when both run on one host). Absent for consume.
  std::optional<double> cpu_seconds;
  std::string error;  // the first error, empty if none

  double events_per_s() const { return seconds > 0 ? events / seconds : 0; }
  double mb_per_s() const { return seconds > 0 ? bytes / seconds / 1e6 : 0; }
};

// Fills the percentile fields of `result` from `histogram` (milliseconds).
void SetLatencies(const LatencyHistogram& histogram, BenchResult& result);

// Fills the schedule lag fields of `result` from `histogram` (milliseconds); leaves them
// absent if it is empty (no --rate).
void SetScheduleLag(const LatencyHistogram& histogram, BenchResult& result);

// One JSON object on one line (no trailing newline), keys in the order of `evlog bench
// produce --help`; absent latencies are null.
std::string FormatBenchJson(const BenchResult& result);

// A few lines for people: rates, latencies, errors.
std::string FormatBenchSummary(const BenchResult& result);

// A progress bar redrawn on stderr every 200 ms while it lives ("\r[#####     ]  45%
// 1,234,567 events  512,345 ev/s"), if stderr is a terminal; otherwise it does nothing. The
// destructor erases the bar. `total` 0 shows counts without a bar.
class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void Add(int64_t n) { done_.fetch_add(n, std::memory_order_relaxed); }

 private:
  void Draw(bool final_draw);

  const std::string label_;
  const int64_t total_;
  const absl::Time start_;
  std::atomic<int64_t> done_{0};
  absl::Notification stop_;
  std::thread thread_;
  bool enabled_ = false;
};

}  // namespace evlog::cli
