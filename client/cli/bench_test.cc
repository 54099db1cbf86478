// Tests of `evlog bench`: its argument parsing and latency histogram on their own, and each
// mode (produce, consume, e2e) run as the real `evlog` binary against a real evlogd with a small
// workload, checking that it prints one valid JSON object with the documented fields. No timing
// assertions: only counts, field presence and the order of the percentiles.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/cli/args.h"
#include "client/cli/bench_args.h"
#include "client/cli/bench_pacer.h"
#include "client/cli/bench_stats.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/server_process.h"

namespace evlog::cli {
namespace {

using evlog::testing::CommandResult;
using evlog::testing::RunCommand;
using evlog::testing::ServerProcess;
using ::testing::HasSubstr;

TEST(BenchArgsTest, ParsesProduceFlags) {
  auto inv = ParseCommandLine({"bench", "produce", "--topic=t", "--events=2.5k", "--size=1KiB",
                               "--producers=16", "--batch-bytes=256k", "--linger-ms=0", "--rate=1M",
                               "--duration=10s", "--json"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_EQ(inv->command, Command::kBench);
  const BenchArgs& b = inv->bench;
  EXPECT_EQ(b.mode, BenchMode::kProduce);
  EXPECT_EQ(b.topic, "t");
  EXPECT_EQ(b.events, 2500);
  EXPECT_EQ(b.size, 1024);
  EXPECT_EQ(b.producers, 16);
  EXPECT_EQ(b.batch_bytes, 256 * 1024);
  EXPECT_EQ(b.linger_ms, 0);
  EXPECT_EQ(b.rate, 1e6);
  EXPECT_EQ(b.duration_ms, 10000);
  EXPECT_TRUE(b.json);
}

TEST(BenchArgsTest, RefusesBadValuesAsUsageErrors) {
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"bench", "produce"},                                        // no --topic
           {"bench", "produce", "--topic=t", "--events=lots"},          // not a count
           {"bench", "produce", "--topic=t", "--size=-1"},              // negative
           {"bench", "produce", "--topic=t", "--producers=0"},          // out of range
           {"bench", "produce", "--topic=t", "--duration=soon"},        // not a duration
           {"bench", "e2e", "--topic=t", "--size=4"},                   // no room for the send time
           {"bench", "consume", "--topic=t"},                           // no --group
           {"bench", "consume", "--topic=t", "--group=g", "--rate=5"},  // not a consume flag
           {"bench", "fly", "--topic=t"},
           {"bench"},
       }) {
    auto inv = ParseCommandLine(args);
    EXPECT_FALSE(inv.ok()) << args.back();
    EXPECT_EQ(inv.status().code(), absl::StatusCode::kInvalidArgument) << args.back();
    EXPECT_THAT(inv.status().message(), HasSubstr("--help")) << args.back();
  }
}

TEST(BenchArgsTest, HelpForEachMode) {
  for (const char* mode : {"produce", "consume", "e2e"}) {
    auto inv = ParseCommandLine({"bench", mode, "--help"});
    ASSERT_TRUE(inv.ok()) << inv.status();
    EXPECT_EQ(inv->command, Command::kHelp);
    EXPECT_THAT(inv->help_text, HasSubstr(absl::StrCat("evlog bench ", mode)));
  }
  auto inv = ParseCommandLine({"bench", "--help"});
  ASSERT_TRUE(inv.ok()) << inv.status();
  EXPECT_THAT(inv->help_text, HasSubstr("bench consume"));
}

TEST(LatencyHistogramTest, BucketsCoverValuesWithinTwoPercent) {
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{63}, int64_t{64}, int64_t{1000},
                    int64_t{123456789}, int64_t{1} << 40, INT64_MAX / 2}) {
    const int b = LatencyHistogram::BucketOf(v);
    ASSERT_GE(b, 0);
    ASSERT_LT(b, LatencyHistogram::kBuckets);
    EXPECT_LE(LatencyHistogram::BucketLow(b), v);
    EXPECT_GT(LatencyHistogram::BucketHigh(b), v);
    EXPECT_LE(LatencyHistogram::BucketHigh(b) - LatencyHistogram::BucketLow(b),
              std::max<int64_t>(1, v / 50));
  }
}

TEST(LatencyHistogramTest, Percentiles) {
  LatencyHistogram h;
  EXPECT_FALSE(h.Percentile(0.5).has_value());
  for (int i = 1; i <= 1000; ++i) h.Record(int64_t{i} * 1000000);  // 1..1000 ms
  LatencyHistogram merged;
  merged.Merge(h);
  EXPECT_EQ(merged.Count(), 1000);
  EXPECT_NEAR(static_cast<double>(*merged.Percentile(0.5)), 500e6, 500e6 * 0.02);
  EXPECT_NEAR(static_cast<double>(*merged.Percentile(0.99)), 990e6, 990e6 * 0.02);
  EXPECT_NEAR(static_cast<double>(*merged.Max()), 1000e6, 1000e6 * 0.02);
}

TEST(SendPacerTest, EventsAreEvenlyDueAndProducersStaggered) {
  const int64_t start = 1000000000;
  // 4 producers at 2,000 events/s each: a period of 500 us, under the 1-ms tick, so the
  // producers' first events are a quarter of the tick apart.
  EXPECT_EQ(SendPacer::FirstDue(start, 0, 4, 2000, 1000000), start);
  EXPECT_EQ(SendPacer::FirstDue(start, 1, 4, 2000, 1000000), start + 250000);
  EXPECT_EQ(SendPacer::FirstDue(start, 3, 4, 2000, 1000000), start + 750000);
  // At 100 events/s each the period (10 ms) is longer than the tick: a quarter of the period.
  EXPECT_EQ(SendPacer::FirstDue(start, 1, 4, 100, 1000000), start + 2500000);
  const SendPacer pacer(start, 2000, 1000000);
  EXPECT_EQ(pacer.Due(0), start);
  EXPECT_EQ(pacer.Due(1), start + 500000);
  EXPECT_EQ(pacer.Due(2000), start + 1000000000);  // the average rate is exact
}

TEST(SendPacerTest, WakesAtMostOncePerTickAndSendsWhatIsDue) {
  const int64_t start = 1000000000;
  const int64_t tick = 1000000;
  SendPacer pacer(start, 10000, tick);  // one event every 100 us
  // Before the first event: sleep until it is due (no earlier wake-up to space from).
  EXPECT_EQ(pacer.SleepBefore(0, start - 300), 300);
  pacer.Woke(start);
  EXPECT_EQ(pacer.SleepBefore(0, start), 0);
  // Event 1 is due 100 us later, but the next wake-up is a tick after the last one; then the
  // ten events due by then all go at once.
  EXPECT_EQ(pacer.SleepBefore(1, start + 5000), tick - 5000);
  pacer.Woke(start + tick);
  for (int64_t i = 1; i <= 10; ++i) EXPECT_EQ(pacer.SleepBefore(i, start + tick), 0) << i;
  EXPECT_GT(pacer.SleepBefore(11, start + tick), 0);
  // Late (a stall): everything due is sent at once, without sleeping.
  EXPECT_EQ(pacer.SleepBefore(50, start + 10 * tick), 0);
  // A long period spaces wake-ups by the period, not the tick.
  SendPacer slow(start, 100, tick);  // one event every 10 ms
  slow.Woke(start);
  EXPECT_EQ(slow.SleepBefore(1, start + 10), 10000000 - 10);
}

// The fields every mode prints, with the types scripts rely on.
void ExpectResultObject(const nlohmann::json& j, const std::string& mode) {
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["mode"], mode);
  for (const char* key : {"events", "bytes", "errors"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_TRUE(j[key].is_number_integer()) << key;
  }
  for (const char* key : {"seconds", "events_per_s", "mb_per_s"}) {
    ASSERT_TRUE(j.contains(key)) << key;
    EXPECT_TRUE(j[key].is_number()) << key;
  }
  for (const char* key : {"p50_ms", "p99_ms", "p999_ms"}) {
    ASSERT_TRUE(j.contains(key)) << key;
  }
  ASSERT_TRUE(j["latency"].is_string());
  if (j["latency"] != "none") {
    ASSERT_TRUE(j["p50_ms"].is_number());
    ASSERT_TRUE(j["p99_ms"].is_number());
    ASSERT_TRUE(j["p999_ms"].is_number());
    EXPECT_LE(j["p50_ms"].get<double>(), j["p99_ms"].get<double>());
    EXPECT_LE(j["p99_ms"].get<double>(), j["p999_ms"].get<double>());
  } else {
    EXPECT_TRUE(j["p50_ms"].is_null());
  }
}

class BenchCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  // Runs `evlog --server=... ARGS` and returns its result.
  CommandResult Evlog(std::vector<std::string> args) {
    args.insert(args.begin(), {EVLOG_CLI_PATH, "--server=" + server_->address(), "--timeout=20s"});
    auto result = RunCommand(args, "", absl::Seconds(60));
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : CommandResult{};
  }

  // Parses stdout as exactly one JSON object on one line.
  static nlohmann::json ParseOne(const CommandResult& r) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  std::unique_ptr<ServerProcess> server_;
};

TEST_F(BenchCliTest, ProduceThenConsumeReportJson) {
  const nlohmann::json produced =
      ParseOne(Evlog({"bench", "produce", "--topic=b", "--events=3000", "--size=100",
                      "--producers=3", "--linger-ms=1", "--json"}));
  ExpectResultObject(produced, "produce");
  EXPECT_EQ(produced["events"], 3000);
  EXPECT_EQ(produced["bytes"], 300000);
  EXPECT_EQ(produced["errors"], 0);
  EXPECT_EQ(produced["producers"], 3);
  EXPECT_EQ(produced["partitions"], 3);  // created by the bench, one per producer
  EXPECT_EQ(produced["latency"], "ack_per_event");
  EXPECT_TRUE(produced["schedule_lag_p99_ms"].is_null());  // no --rate, no schedule
  EXPECT_TRUE(produced["cpu_seconds"].is_number());

  const nlohmann::json consumed =
      ParseOne(Evlog({"bench", "consume", "--topic=b", "--group=g1", "--json"}));
  ExpectResultObject(consumed, "consume");
  EXPECT_EQ(consumed["events"], 3000);  // the whole backlog of a new group
  EXPECT_EQ(consumed["bytes"], 300000);
  EXPECT_EQ(consumed["errors"], 0);
  EXPECT_TRUE(consumed["cpu_seconds"].is_null());

  // A group that has read everything has no backlog: nothing to read, still valid output.
  const nlohmann::json again =
      ParseOne(Evlog({"bench", "consume", "--topic=b", "--group=g1", "--json"}));
  EXPECT_EQ(again["events"], 0);
}

TEST_F(BenchCliTest, RateLimitedProduceAndSummary) {
  const CommandResult r = Evlog({"bench", "produce", "--topic=s", "--events=500", "--size=1KiB",
                                 "--rate=5000", "--linger-ms=0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("produce s: 500 events (512,000 bytes)"));
  EXPECT_THAT(r.out, HasSubstr("p99"));
  EXPECT_THAT(r.out, HasSubstr("sends behind the --rate schedule"));
  EXPECT_THAT(r.out, HasSubstr("errors: 0"));
  EXPECT_EQ(r.err, "");  // no progress bar: stderr is not a terminal
}

TEST_F(BenchCliTest, EndToEndReceivesEveryEvent) {
  const nlohmann::json j =
      ParseOne(Evlog({"bench", "e2e", "--topic=e", "--events=800", "--rate=4000", "--producers=2",
                      "--partitions=2", "--json"}));
  ExpectResultObject(j, "e2e");
  EXPECT_EQ(j["events"], 800);
  EXPECT_EQ(j["errors"], 0);
  EXPECT_EQ(j["latency"], "end_to_end");
  EXPECT_TRUE(j["schedule_lag_p99_ms"].is_number());  // paced at --rate
  EXPECT_TRUE(j["schedule_lag_max_ms"].is_number());
}

TEST_F(BenchCliTest, MissingTopicForConsumeFailsWithNotFound) {
  const CommandResult r = Evlog({"bench", "consume", "--topic=nope", "--group=g", "--json"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("NOT_FOUND"));
}

}  // namespace
}  // namespace evlog::cli
