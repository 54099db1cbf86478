// MetricsRegistry: a small Prometheus metrics registry of our own (Debian 12 has no
// prometheus-cpp): counters, gauges and fixed-bucket histograms, with or without labels, plus
// values computed only when scraped, rendered in the Prometheus text exposition format 0.0.4.
//
// Two kinds of metric, chosen by who owns the value:
//   - Owned by the registry (Counter, Gauge, Histogram): code on the hot path updates them with
//     relaxed atomics. It gets a pointer once (per label set, e.g. once per topic) and keeps
//     it; the pointer is valid for the registry's lifetime, so no lookup or lock happens per
//     request. Series are never freed (a family's filter can hide them from scrapes, e.g. a
//     deleted topic's), so callers must only create label sets from bounded sets (topics that
//     exist, fixed reasons).
//   - Owned by someone else (storage stats, group lag, connection counts): a collector
//     registered with AddCollector/AddCallbackGauge computes the samples at scrape time, so
//     nothing is paid between scrapes.
//
// Example:
//   MetricsRegistry registry;
//   CounterFamily* records = registry.AddCounterFamily(
//       "evlog_records_in_total", "Records appended.", {"topic"});
//   Counter* orders = records->WithLabels({"orders"});   // once, then kept
//   orders->Add(3);                                      // hot path: one atomic add
//   std::string text = registry.Scrape();
//
// Naming is the caller's job (Prometheus conventions: `_total` for counters, base units
// `_seconds`/`_bytes`); registration only checks that names are syntactically valid and unique.
//
// Thread safety: every method may be called from any thread. Registration normally happens at
// start-up but may also happen while scrapes run. Scrape() runs collectors under the registry's
// lock, so collectors must not call back into the registry.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace evlog::server {

// The type of a metric family, as written on its `# TYPE` line.
enum class MetricType { kCounter, kGauge, kHistogram };

// A monotonically increasing count. Lock-free.
class Counter {
 public:
  // Adds `n` (>= 0).
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down. Lock-free.
class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A distribution over fixed buckets (upper bounds, ascending; +Inf is implicit). Observe is
// lock-free: one atomic add on the bucket and one on the sum. A scrape reads the buckets one by
// one, so it may see an observation in a bucket but not yet in the sum (never the reverse
// problem of _count disagreeing with the +Inf bucket: _count is computed from the buckets).
class Histogram {
 public:
  // REQUIRES: `bounds` non-empty, finite and strictly ascending.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  // Non-cumulative count of bucket i (i == bounds().size() is the +Inf bucket).
  uint64_t bucket_count(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 entries
  std::atomic<double> sum_{0};
};

// Writes samples in the text exposition format. Collectors receive one; each family's samples
// must be written together, after its BeginFamily.
class ExpositionWriter {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  explicit ExpositionWriter(std::string* out) : out_(out) {}

  // Writes the `# HELP` and `# TYPE` lines of a family. `help` may hold any characters (they
  // are escaped).
  void BeginFamily(const std::string& name, const std::string& help, MetricType type);

  // Writes `name{labels} value`. Label values may hold any characters (they are escaped);
  // label names must be valid (they are not checked here).
  void Sample(const std::string& name, const Labels& labels, double value);

 private:
  std::string* const out_;
};

// Label values are given in the order of the family's label names.
using LabelValues = std::vector<std::string>;

// A family of metrics of type T (Counter or Gauge) sharing a name, one per label set.
template <typename T>
class MetricFamily {
 public:
  MetricFamily(std::vector<std::string> label_names) : label_names_(std::move(label_names)) {}

  // The series for `values` (created at zero on first use). The pointer stays valid for the
  // registry's lifetime: look it up once and keep it. Takes a lock; not for every request.
  // REQUIRES: values.size() == number of label names.
  T* WithLabels(const LabelValues& values);

  const std::vector<std::string>& label_names() const { return label_names_; }

  // From now on, scrapes show only the series for which `keep(values)` is true; the others
  // keep counting (their pointers stay valid) and reappear, with their values, once `keep`
  // says so again. `keep` is called under this family's lock at every scrape: it must be
  // cheap, thread-safe, must not call into the registry, and must outlive the registry.
  void SetFilter(std::function<bool(const LabelValues&)> keep);

  // Calls `visit(values, metric)` for every series the filter keeps, in label order. Used by
  // the scrape.
  void ForEach(const std::function<void(const LabelValues&, const T&)>& visit) const;

 private:
  const std::vector<std::string> label_names_;
  mutable absl::Mutex mu_;
  std::map<LabelValues, std::unique_ptr<T>> series_ ABSL_GUARDED_BY(mu_);
  std::function<bool(const LabelValues&)> keep_ ABSL_GUARDED_BY(mu_);
};

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registration. Each returns a pointer owned by the registry, valid for its lifetime.
  // Names must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not
  // starting with "__", not "le"), and a name may be registered once: anything else is a
  // programming error and aborts the process with a message naming the metric.
  Counter* AddCounter(const std::string& name, const std::string& help);
  CounterFamily* AddCounterFamily(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names);
  Gauge* AddGauge(const std::string& name, const std::string& help);
  GaugeFamily* AddGaugeFamily(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names);
  Histogram* AddHistogram(const std::string& name, const std::string& help,
                          std::vector<double> bounds);

  // A single unlabelled value computed by `value` at every scrape (on the scrape thread).
  // `value` must be cheap, thread-safe and valid until the registry is destroyed.
  void AddCallbackGauge(const std::string& name, const std::string& help,
                        std::function<double()> value);
  void AddCallbackCounter(const std::string& name, const std::string& help,
                          std::function<double()> value);

  // A collector writes whole families of its own at every scrape (for labelled values owned
  // elsewhere, or several families derived from one snapshot). `names` are the families it
  // writes, reserved so that nobody registers them twice. `collect` must be thread-safe, must
  // not call into the registry, and must stay valid until the registry is destroyed.
  void AddCollector(const std::vector<std::string>& names,
                    std::function<void(ExpositionWriter&)> collect);

  // Every metric in the text exposition format 0.0.4, in registration order.
  std::string Scrape() const;

 private:
  struct Entry;
  void Register(const std::string& name, std::unique_ptr<Entry> entry);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Entry>> entries_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> names_ ABSL_GUARDED_BY(mu_);
};

// Produce-latency buckets, in seconds: 0.5 ms to 10 s, roughly 1-2.5-5 per decade.
std::vector<double> LatencyBucketsSeconds();

}  // namespace evlog::server
