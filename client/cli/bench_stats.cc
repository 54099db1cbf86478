#include "client/cli/bench_stats.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace evlog::cli {

LatencyHistogram::LatencyHistogram() : counts_(new std::atomic<int64_t>[kBuckets]) {
  for (int i = 0; i < kBuckets; ++i) counts_[i].store(0, std::memory_order_relaxed);
}

int LatencyHistogram::BucketOf(int64_t nanos) {
  if (nanos < (int64_t{1} << kSubBits)) return nanos < 0 ? 0 : static_cast<int>(nanos);
  const int e = 63 - std::countl_zero(static_cast<uint64_t>(nanos));  // kSubBits..62
  const int sub = static_cast<int>(nanos >> (e - kSubBits)) - (1 << kSubBits);
  return ((e - kSubBits + 1) << kSubBits) + sub;
}

int64_t LatencyHistogram::BucketLow(int bucket) {
  if (bucket < (1 << kSubBits)) return bucket;
  const int e = (bucket >> kSubBits) + kSubBits - 1;
  const int64_t sub = bucket & ((1 << kSubBits) - 1);
  return ((int64_t{1} << kSubBits) + sub) << (e - kSubBits);
}

int64_t LatencyHistogram::BucketHigh(int bucket) {
  if (bucket < (1 << kSubBits)) return bucket + 1;
  const int e = (bucket >> kSubBits) + kSubBits - 1;
  return BucketLow(bucket) + (int64_t{1} << (e - kSubBits));
}

void LatencyHistogram::Record(int64_t nanos) {
  counts_[BucketOf(nanos)].fetch_add(1, std::memory_order_relaxed);
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) {
    const int64_t n = other.counts_[i].load(std::memory_order_relaxed);
    if (n != 0) counts_[i].fetch_add(n, std::memory_order_relaxed);
  }
}

int64_t LatencyHistogram::Count() const {
  int64_t n = 0;
  for (int i = 0; i < kBuckets; ++i) n += counts_[i].load(std::memory_order_relaxed);
  return n;
}

std::optional<int64_t> LatencyHistogram::Percentile(double q) const {
  const int64_t count = Count();
  if (count == 0) return std::nullopt;
  const int64_t rank = std::clamp<int64_t>(
      static_cast<int64_t>(std::ceil(q * static_cast<double>(count))), 1, count);
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    if (seen >= rank) return (BucketLow(i) + BucketHigh(i) - 1) / 2;
  }
  return std::nullopt;  // counts moved under us; only while recording goes on
}

std::optional<int64_t> LatencyHistogram::Max() const {
  for (int i = kBuckets - 1; i >= 0; --i) {
    if (counts_[i].load(std::memory_order_relaxed) != 0) return BucketHigh(i) - 1;
  }
  return std::nullopt;
}

void SetLatencies(const LatencyHistogram& histogram, BenchResult& result) {
  auto ms = [](std::optional<int64_t> ns) -> std::optional<double> {
    if (!ns.has_value()) return std::nullopt;
    return static_cast<double>(*ns) / 1e6;
  };
  result.p50_ms = ms(histogram.Percentile(0.50));
  result.p99_ms = ms(histogram.Percentile(0.99));
  result.p999_ms = ms(histogram.Percentile(0.999));
  result.max_ms = ms(histogram.Max());
}

void SetScheduleLag(const LatencyHistogram& histogram, BenchResult& result) {
  if (histogram.Count() == 0) return;
  result.schedule_lag_p99_ms = static_cast<double>(*histogram.Percentile(0.99)) / 1e6;
  result.schedule_lag_max_ms = static_cast<double>(*histogram.Max()) / 1e6;
}

namespace {

// Rounds to 3 decimals for stable, readable output.
double Round3(double v) { return std::round(v * 1000) / 1000; }

nlohmann::ordered_json OptionalMs(const std::optional<double>& v) {
  if (!v.has_value()) return nullptr;
  return Round3(*v);
}

std::string Grouped(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return n < 0 ? "-" + out : out;
}

std::string Ms(const std::optional<double>& v) {
  return v.has_value() ? absl::StrFormat("%.3f ms", *v) : "-";
}

}  // namespace

std::string FormatBenchJson(const BenchResult& r) {
  nlohmann::ordered_json j;
  j["mode"] = r.mode;
  j["topic"] = r.topic;
  j["events"] = r.events;
  j["bytes"] = r.bytes;
  j["seconds"] = Round3(r.seconds);
  j["events_per_s"] = static_cast<int64_t>(std::llround(r.events_per_s()));
  j["mb_per_s"] = Round3(r.mb_per_s());
  j["p50_ms"] = OptionalMs(r.p50_ms);
  j["p99_ms"] = OptionalMs(r.p99_ms);
  j["p999_ms"] = OptionalMs(r.p999_ms);
  j["max_ms"] = OptionalMs(r.max_ms);
  j["latency"] = r.latency;
  j["errors"] = r.errors;
  j["producers"] = r.producers;
  j["size"] = r.size;
  j["partitions"] = r.partitions;
  j["rate"] = r.rate;
  j["batches"] = r.batches;
  j["schedule_lag_p99_ms"] = OptionalMs(r.schedule_lag_p99_ms);
  j["schedule_lag_max_ms"] = OptionalMs(r.schedule_lag_max_ms);
  j["cpu_seconds"] = OptionalMs(r.cpu_seconds);  // 3 decimals, null if absent
  if (!r.error.empty()) j["error"] = r.error;
  return j.dump();
}

std::string FormatBenchSummary(const BenchResult& r) {
  std::string out =
      absl::StrFormat("%s %s: %s events (%s bytes) in %.3f s: %s events/s, %.2f MB/s\n", r.mode,
                      r.topic, Grouped(r.events), Grouped(r.bytes), r.seconds,
                      Grouped(static_cast<int64_t>(std::llround(r.events_per_s()))), r.mb_per_s());
  if (r.latency != "none") {
    absl::StrAppend(&out, "  latency (",
                    r.latency == "end_to_end" ? "Send to Poll, per event"
                                              : "Send to acknowledgement, per event",
                    "): p50 ", Ms(r.p50_ms), ", p99 ", Ms(r.p99_ms), ", p99.9 ", Ms(r.p999_ms),
                    ", max ", Ms(r.max_ms), "\n");
  }
  if (r.producers > 0) {
    absl::StrAppend(&out, "  ", r.producers, r.producers == 1 ? " producer, " : " producers, ",
                    r.size, "-byte values, ", r.partitions, " partitions, ",
                    r.rate > 0 ? absl::StrCat("rate limit ", Grouped(std::llround(r.rate)), "/s")
                               : std::string("no rate limit"),
                    ", ", Grouped(r.batches), " batches\n");
  }
  if (r.cpu_seconds.has_value() && r.seconds > 0) {
    absl::StrAppend(&out, absl::StrFormat("  CPU of this bench process: %.2f s (%.2f cores)\n",
                                          *r.cpu_seconds, *r.cpu_seconds / r.seconds));
  }
  if (r.schedule_lag_p99_ms.has_value()) {
    absl::StrAppend(&out, "  sends behind the --rate schedule: p99 ", Ms(r.schedule_lag_p99_ms),
                    ", max ", Ms(r.schedule_lag_max_ms),
                    *r.schedule_lag_max_ms > 10 ? " (the load generator fell behind)" : "", "\n");
  }
  absl::StrAppend(&out, "  errors: ", Grouped(r.errors),
                  r.error.empty() ? "" : " (first: ", r.error, r.error.empty() ? "" : ")", "\n");
  return out;
}

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), start_(absl::Now()) {
  enabled_ = ::isatty(STDERR_FILENO) == 1;
  if (!enabled_) return;
  thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(absl::Milliseconds(200))) Draw(false);
  });
}

Progress::~Progress() {
  if (!enabled_) return;
  stop_.Notify();
  thread_.join();
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

void Progress::Draw(bool final_draw) {
  const int64_t done = done_.load(std::memory_order_relaxed);
  const double secs = absl::ToDoubleSeconds(absl::Now() - start_);
  const int64_t rate = secs > 0 ? static_cast<int64_t>(done / secs) : 0;
  std::string bar;
  if (total_ > 0) {
    constexpr int kWidth = 30;
    const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
    const int filled = static_cast<int>(frac * kWidth);
    bar = absl::StrFormat("[%s%s] %3d%% ", std::string(filled, '#'),
                          std::string(kWidth - filled, ' '), static_cast<int>(frac * 100));
  }
  std::fprintf(stderr, "\r\033[K%s %s%s events  %s ev/s%s", label_.c_str(), bar.c_str(),
               Grouped(done).c_str(), Grouped(rate).c_str(), final_draw ? "\n" : "");
  std::fflush(stderr);
}

}  // namespace evlog::cli
