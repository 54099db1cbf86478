#include "server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace evlog::server {
namespace {

bool IsValidMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok =
        absl::ascii_isalpha(c) || c == '_' || c == ':' || (i > 0 && absl::ascii_isdigit(c));
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(const std::string& name) {
  if (name.empty() || name == "le" || name.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (!(absl::ascii_isalpha(c) || c == '_' || (i > 0 && absl::ascii_isdigit(c)))) return false;
  }
  return true;
}

// Registration mistakes are bugs in evlogd, found by the first run of any test: stop loudly.
[[noreturn]] void RegistrationError(const std::string& what) {
  std::fprintf(stderr, "metrics registry: %s\n", what.c_str());
  std::abort();
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// Shortest text that reads back as the same double; integers without a fraction; the
// exposition format's spellings of infinities and NaN.
void AppendValue(double v, std::string* out) {
  if (std::isnan(v)) {
    out->append("NaN");
  } else if (std::isinf(v)) {
    out->append(v > 0 ? "+Inf" : "-Inf");
  } else {
    // Plain decimals where they stay short (bucket bounds read 0.0005, not 5e-04).
    char buffer[400];
    const double magnitude = std::fabs(v);
    const std::to_chars_result r =
        magnitude == 0 || (magnitude >= 1e-6 && magnitude < 1e16)
            ? std::to_chars(buffer, buffer + sizeof(buffer), v, std::chars_format::fixed)
            : std::to_chars(buffer, buffer + sizeof(buffer), v);
    out->append(buffer, r.ptr);
  }
}

// HELP text escapes backslash and newline; label values also escape the double quote.
void AppendEscaped(const std::string& s, bool quote, std::string* out) {
  for (const char c : s) {
    switch (c) {
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '"':
        out->append(quote ? "\\\"" : "\"");
        break;
      default:
        out->push_back(c);
    }
  }
}

ExpositionWriter::Labels Zip(const std::vector<std::string>& names, const LabelValues& values) {
  ExpositionWriter::Labels labels;
  labels.reserve(names.size());
  for (size_t i = 0; i < names.size(); ++i) labels.emplace_back(names[i], values[i]);
  return labels;
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::Observe(double value) {
  // Buckets are `le` (less or equal): a value equal to a bound belongs to that bound's bucket.
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), value) -
                                       bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

void ExpositionWriter::BeginFamily(const std::string& name, const std::string& help,
                                   MetricType type) {
  absl::StrAppend(out_, "# HELP ", name, " ");
  AppendEscaped(help, /*quote=*/false, out_);
  absl::StrAppend(out_, "\n# TYPE ", name, " ", TypeName(type), "\n");
}

void ExpositionWriter::Sample(const std::string& name, const Labels& labels, double value) {
  out_->append(name);
  if (!labels.empty()) {
    out_->push_back('{');
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i > 0) out_->push_back(',');
      absl::StrAppend(out_, labels[i].first, "=\"");
      AppendEscaped(labels[i].second, /*quote=*/true, out_);
      out_->push_back('"');
    }
    out_->push_back('}');
  }
  out_->push_back(' ');
  AppendValue(value, out_);
  out_->push_back('\n');
}

template <typename T>
T* MetricFamily<T>::WithLabels(const LabelValues& values) {
  if (values.size() != label_names_.size()) {
    RegistrationError(absl::StrCat("WithLabels got ", values.size(), " values for ",
                                   label_names_.size(), " label names"));
  }
  absl::MutexLock l(&mu_);
  std::unique_ptr<T>& metric = series_[values];
  if (metric == nullptr) metric = std::make_unique<T>();
  return metric.get();
}

template <typename T>
void MetricFamily<T>::SetFilter(std::function<bool(const LabelValues&)> keep) {
  absl::MutexLock l(&mu_);
  keep_ = std::move(keep);
}

template <typename T>
void MetricFamily<T>::ForEach(
    const std::function<void(const LabelValues&, const T&)>& visit) const {
  absl::MutexLock l(&mu_);
  for (const auto& [values, metric] : series_) {
    if (!keep_ || keep_(values)) visit(values, *metric);
  }
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;

// One registered name: how to write it at scrape time.
struct MetricsRegistry::Entry {
  std::function<void(ExpositionWriter&)> write;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::unique_ptr<CounterFamily> counter_family;
  std::unique_ptr<GaugeFamily> gauge_family;
};

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::Register(const std::string& name, std::unique_ptr<Entry> entry) {
  if (!IsValidMetricName(name)) RegistrationError("invalid metric name \"" + name + "\"");
  absl::MutexLock l(&mu_);
  if (std::find(names_.begin(), names_.end(), name) != names_.end()) {
    RegistrationError("metric \"" + name + "\" registered twice");
  }
  names_.push_back(name);
  entries_.push_back(std::move(entry));
}

Counter* MetricsRegistry::AddCounter(const std::string& name, const std::string& help) {
  auto entry = std::make_unique<Entry>();
  entry->counter = std::make_unique<Counter>();
  Counter* counter = entry->counter.get();
  entry->write = [name, help, counter](ExpositionWriter& w) {
    w.BeginFamily(name, help, MetricType::kCounter);
    w.Sample(name, {}, static_cast<double>(counter->value()));
  };
  Register(name, std::move(entry));
  return counter;
}

CounterFamily* MetricsRegistry::AddCounterFamily(const std::string& name, const std::string& help,
                                                 std::vector<std::string> label_names) {
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label)) {
      RegistrationError("metric \"" + name + "\": invalid label name \"" + label + "\"");
    }
  }
  auto entry = std::make_unique<Entry>();
  entry->counter_family = std::make_unique<CounterFamily>(std::move(label_names));
  CounterFamily* family = entry->counter_family.get();
  entry->write = [name, help, family](ExpositionWriter& w) {
    w.BeginFamily(name, help, MetricType::kCounter);
    family->ForEach([&](const LabelValues& values, const Counter& c) {
      w.Sample(name, Zip(family->label_names(), values), static_cast<double>(c.value()));
    });
  };
  Register(name, std::move(entry));
  return family;
}

Gauge* MetricsRegistry::AddGauge(const std::string& name, const std::string& help) {
  auto entry = std::make_unique<Entry>();
  entry->gauge = std::make_unique<Gauge>();
  Gauge* gauge = entry->gauge.get();
  entry->write = [name, help, gauge](ExpositionWriter& w) {
    w.BeginFamily(name, help, MetricType::kGauge);
    w.Sample(name, {}, static_cast<double>(gauge->value()));
  };
  Register(name, std::move(entry));
  return gauge;
}

GaugeFamily* MetricsRegistry::AddGaugeFamily(const std::string& name, const std::string& help,
                                             std::vector<std::string> label_names) {
  for (const std::string& label : label_names) {
    if (!IsValidLabelName(label)) {
      RegistrationError("metric \"" + name + "\": invalid label name \"" + label + "\"");
    }
  }
  auto entry = std::make_unique<Entry>();
  entry->gauge_family = std::make_unique<GaugeFamily>(std::move(label_names));
  GaugeFamily* family = entry->gauge_family.get();
  entry->write = [name, help, family](ExpositionWriter& w) {
    w.BeginFamily(name, help, MetricType::kGauge);
    family->ForEach([&](const LabelValues& values, const Gauge& g) {
      w.Sample(name, Zip(family->label_names(), values), static_cast<double>(g.value()));
    });
  };
  Register(name, std::move(entry));
  return family;
}

Histogram* MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         std::vector<double> bounds) {
  if (bounds.empty() || !std::is_sorted(bounds.begin(), bounds.end()) ||
      std::adjacent_find(bounds.begin(), bounds.end()) != bounds.end() ||
      !std::isfinite(bounds.back())) {
    RegistrationError("histogram \"" + name + "\": bounds must be finite and strictly ascending");
  }
  auto entry = std::make_unique<Entry>();
  entry->histogram = std::make_unique<Histogram>(std::move(bounds));
  Histogram* h = entry->histogram.get();
  entry->write = [name, help, h](ExpositionWriter& w) {
    w.BeginFamily(name, help, MetricType::kHistogram);
    const std::string bucket = name + "_bucket";
    uint64_t cumulative = 0;
    std::string le;
    for (size_t i = 0; i <= h->bounds().size(); ++i) {
      cumulative += h->bucket_count(i);
      le.clear();
      if (i < h->bounds().size()) {
        AppendValue(h->bounds()[i], &le);
      } else {
        le = "+Inf";
      }
      w.Sample(bucket, {{"le", le}}, static_cast<double>(cumulative));
    }
    w.Sample(name + "_sum", {}, h->sum());
    w.Sample(name + "_count", {}, static_cast<double>(cumulative));
  };
  Register(name, std::move(entry));
  return h;
}

void MetricsRegistry::AddCallbackGauge(const std::string& name, const std::string& help,
                                       std::function<double()> value) {
  auto entry = std::make_unique<Entry>();
  entry->write = [name, help, value = std::move(value)](ExpositionWriter& w) {
    w.BeginFamily(name, help, MetricType::kGauge);
    w.Sample(name, {}, value());
  };
  Register(name, std::move(entry));
}

void MetricsRegistry::AddCallbackCounter(const std::string& name, const std::string& help,
                                         std::function<double()> value) {
  auto entry = std::make_unique<Entry>();
  entry->write = [name, help, value = std::move(value)](ExpositionWriter& w) {
    w.BeginFamily(name, help, MetricType::kCounter);
    w.Sample(name, {}, value());
  };
  Register(name, std::move(entry));
}

void MetricsRegistry::AddCollector(const std::vector<std::string>& names,
                                   std::function<void(ExpositionWriter&)> collect) {
  if (names.empty()) RegistrationError("a collector must name the families it writes");
  for (size_t i = 1; i < names.size(); ++i) {
    // Reserve the other names with entries that write nothing.
    auto placeholder = std::make_unique<Entry>();
    placeholder->write = [](ExpositionWriter&) {};
    Register(names[i], std::move(placeholder));
  }
  auto entry = std::make_unique<Entry>();
  entry->write = std::move(collect);
  Register(names[0], std::move(entry));
}

std::string MetricsRegistry::Scrape() const {
  std::string out;
  out.reserve(16 << 10);
  ExpositionWriter writer(&out);
  absl::MutexLock l(&mu_);
  for (const std::unique_ptr<Entry>& entry : entries_) entry->write(writer);
  return out;
}

std::vector<double> LatencyBucketsSeconds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

}  // namespace evlog::server
