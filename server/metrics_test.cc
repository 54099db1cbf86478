// Unit tests of the metrics registry (metrics.h) and its text exposition format, and of the
// evlog-specific helpers of server_metrics.h that need no server.
#include "server/metrics.h"

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server_metrics.h"

namespace evlog::server {
namespace {

using ::testing::HasSubstr;

TEST(MetricsRegistryTest, CounterHasHelpTypeAndValue) {
  MetricsRegistry registry;
  Counter* c = registry.AddCounter("evlog_things_total", "Things done.");
  c->Add(41);
  c->Add();
  EXPECT_EQ(registry.Scrape(),
            "# HELP evlog_things_total Things done.\n"
            "# TYPE evlog_things_total counter\n"
            "evlog_things_total 42\n");
}

TEST(MetricsRegistryTest, LabelledSeriesAreSortedAndPointersStable) {
  MetricsRegistry registry;
  CounterFamily* f = registry.AddCounterFamily("evlog_x_total", "X.", {"topic", "kind"});
  Counter* b = f->WithLabels({"b", "k"});
  Counter* a = f->WithLabels({"a", "k"});
  EXPECT_EQ(f->WithLabels({"b", "k"}), b);  // the same series, not a new one
  a->Add(1);
  b->Add(2);
  EXPECT_EQ(registry.Scrape(),
            "# HELP evlog_x_total X.\n"
            "# TYPE evlog_x_total counter\n"
            "evlog_x_total{topic=\"a\",kind=\"k\"} 1\n"
            "evlog_x_total{topic=\"b\",kind=\"k\"} 2\n");
}

TEST(MetricsRegistryTest, AFilterHidesSeriesWithoutForgettingThem) {
  MetricsRegistry registry;
  CounterFamily* f = registry.AddCounterFamily("evlog_x_total", "X.", {"topic"});
  Counter* a = f->WithLabels({"a"});
  Counter* b = f->WithLabels({"b"});
  a->Add(1);
  b->Add(2);
  bool show_b = false;
  f->SetFilter([&](const LabelValues& values) { return values[0] != "b" || show_b; });
  b->Add(3);  // still counts while hidden
  EXPECT_EQ(registry.Scrape(),
            "# HELP evlog_x_total X.\n"
            "# TYPE evlog_x_total counter\n"
            "evlog_x_total{topic=\"a\"} 1\n");
  show_b = true;
  EXPECT_EQ(f->WithLabels({"b"}), b);
  EXPECT_EQ(registry.Scrape(),
            "# HELP evlog_x_total X.\n"
            "# TYPE evlog_x_total counter\n"
            "evlog_x_total{topic=\"a\"} 1\n"
            "evlog_x_total{topic=\"b\"} 5\n");
}

TEST(MetricsRegistryTest, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry registry;
  GaugeFamily* f =
      registry.AddGaugeFamily("evlog_g", "Help with \\ backslash\nand newline \"quoted\".", {"l"});
  f->WithLabels({"a\"b\\c\nd"})->Set(-3);
  EXPECT_EQ(registry.Scrape(),
            "# HELP evlog_g Help with \\\\ backslash\\nand newline \"quoted\".\n"
            "# TYPE evlog_g gauge\n"
            "evlog_g{l=\"a\\\"b\\\\c\\nd\"} -3\n");
}

TEST(MetricsRegistryTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  MetricsRegistry registry;
  Histogram* h = registry.AddHistogram("evlog_latency_seconds", "Latency.", {0.001, 0.5, 2});
  h->Observe(0.0005);
  h->Observe(0.001);  // equal to a bound: in that bound's bucket (le = less or equal)
  h->Observe(0.25);
  h->Observe(3);
  EXPECT_EQ(registry.Scrape(),
            "# HELP evlog_latency_seconds Latency.\n"
            "# TYPE evlog_latency_seconds histogram\n"
            "evlog_latency_seconds_bucket{le=\"0.001\"} 2\n"
            "evlog_latency_seconds_bucket{le=\"0.5\"} 3\n"
            "evlog_latency_seconds_bucket{le=\"2\"} 3\n"
            "evlog_latency_seconds_bucket{le=\"+Inf\"} 4\n"
            "evlog_latency_seconds_sum 3.2515\n"
            "evlog_latency_seconds_count 4\n");
}

TEST(MetricsRegistryTest, CallbacksAndCollectorsRunAtScrapeTime) {
  MetricsRegistry registry;
  int calls = 0;
  registry.AddCallbackGauge("evlog_cb", "Callback.", [&] { return ++calls + 0.5; });
  registry.AddCollector({"evlog_a", "evlog_b_total"}, [](ExpositionWriter& w) {
    w.BeginFamily("evlog_a", "A.", MetricType::kGauge);
    w.Sample("evlog_a", {{"group", "g1"}}, 7);
    w.BeginFamily("evlog_b_total", "B.", MetricType::kCounter);
    w.Sample("evlog_b_total", {}, 1e20);
  });
  EXPECT_EQ(calls, 0);
  const std::string text = registry.Scrape();
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(text, HasSubstr("evlog_cb 1.5\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE evlog_a gauge\nevlog_a{group=\"g1\"} 7\n"));
  EXPECT_THAT(text, HasSubstr("evlog_b_total 1e+20\n"));
}

TEST(MetricsRegistryTest, ValuesArePlainDecimalsWhenShort) {
  MetricsRegistry registry;
  registry.AddHistogram("evlog_h_seconds", "H.", {0.0005, 1});
  registry.AddCallbackGauge("evlog_tiny", "T.", [] { return 1e-9; });
  registry.AddCallbackGauge("evlog_nan", "N.", [] { return std::nan(""); });
  const std::string text = registry.Scrape();
  EXPECT_THAT(text, HasSubstr("evlog_h_seconds_bucket{le=\"0.0005\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("evlog_tiny 1e-09\n"));
  EXPECT_THAT(text, HasSubstr("evlog_nan NaN\n"));
}

TEST(MetricsRegistryTest, EveryLineParsesAsCommentOrSample) {
  MetricsRegistry registry;
  registry.AddCounterFamily("evlog_c_total", "C.", {"t"})->WithLabels({"x y{}"})->Add(5);
  registry.AddHistogram("evlog_h_seconds", "H.", LatencyBucketsSeconds())->Observe(0.003);
  registry.AddGauge("evlog_g", "G.")->Set(9);
  const std::string text = registry.Scrape();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line.substr(0, 7) == "# HELP " || line.substr(0, 7) == "# TYPE ") continue;
    // name{labels} value, where the value is the text after the last space.
    const size_t space = line.rfind(' ');
    ASSERT_NE(space, absl::string_view::npos) << line;
    double value;
    EXPECT_TRUE(absl::SimpleAtod(line.substr(space + 1), &value) ||
                line.substr(space + 1) == "+Inf")
        << line;
  }
}

TEST(MetricsRegistryTest, ConcurrentUpdatesAreAllCounted) {
  MetricsRegistry registry;
  Counter* c = registry.AddCounter("evlog_n_total", "N.");
  Histogram* h = registry.AddHistogram("evlog_h", "H.", {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c->Add();
        h->Observe(0.5);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(c->value(), 40000u);
  EXPECT_EQ(h->bucket_count(0), 40000u);
  EXPECT_DOUBLE_EQ(h->sum(), 20000);
}

TEST(MetricsRegistryDeathTest, InvalidOrDuplicateNamesAbort) {
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounter("bad-name", "x");
      },
      "invalid metric name");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounter("evlog_a_total", "x");
        r.AddGauge("evlog_a_total", "y");
      },
      "registered twice");
  EXPECT_DEATH(
      {
        MetricsRegistry r;
        r.AddCounterFamily("evlog_b_total", "x", {"le"});
      },
      "invalid label name");
}

TEST(ServerMetricsTest, RejectedReasonsStartAtZeroAndCount) {
  ServerMetrics metrics;
  metrics.Rejected(kRejectQuota);
  metrics.Rejected(kRejectQuota);
  metrics.Rejected("something_new");
  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("evlog_rejected_requests_total{reason=\"quota\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("evlog_rejected_requests_total{reason=\"queue_full\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("evlog_rejected_requests_total{reason=\"something_new\"} 1\n"));
}

TEST(ServerMetricsTest, TopicSeriesAreSharedAndCacheFollowsTopic) {
  ServerMetrics metrics;
  TopicMetricsCache cache;
  TopicMetrics* a = cache.Get(&metrics, "a");
  EXPECT_EQ(cache.Get(&metrics, "a"), a);
  EXPECT_EQ(metrics.ForTopic("a"), a);
  TopicMetrics* b = cache.Get(&metrics, "b");
  EXPECT_NE(a, b);
  a->records_in->Add(3);
  b->bytes_out->Add(10);
  const std::string text = metrics.Scrape();
  EXPECT_THAT(text, HasSubstr("evlog_records_in_total{topic=\"a\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("evlog_bytes_out_total{topic=\"b\"} 10\n"));
}

TEST(ServerMetricsTest, InvalidBatchReasonNamesTheLimit) {
  EdgeLimits limits;
  limits.max_record_bytes = 10;
  limits.max_batch_bytes = 100;
  limits.max_batch_records = 3;
  evlog::v1::ProduceRequest big_record;
  big_record.set_topic("t");
  big_record.add_records()->set_value(std::string(11, 'x'));
  EXPECT_EQ(InvalidBatchReason(big_record, limits), kRejectRecordTooLarge);
  evlog::v1::ProduceRequest many;
  many.set_topic("t");
  for (int i = 0; i < 4; ++i) many.add_records()->set_value("v");
  EXPECT_EQ(InvalidBatchReason(many, limits), kRejectBatchTooLarge);
  evlog::v1::ProduceRequest bad_name;
  bad_name.set_topic("no spaces");
  bad_name.add_records()->set_value("v");
  EXPECT_EQ(InvalidBatchReason(bad_name, limits), kRejectInvalid);
}

}  // namespace
}  // namespace evlog::server
