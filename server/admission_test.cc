// Tests of admission control: the memory budget split, byte sizes, byte budgets and their
// retry hints, the connection cap, and the --memory-budget flag. A fake clock makes the drain-rate
// estimates exact.
#include "server/admission.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/byte_size.h"
#include "gtest/gtest.h"
#include "server/flags.h"
#include "server/status_mapping.h"

ABSL_DECLARE_FLAG(std::string, memory_budget);
ABSL_DECLARE_FLAG(std::string, block_cache_bytes);
ABSL_DECLARE_FLAG(std::string, max_write_group_bytes);
ABSL_DECLARE_FLAG(std::string, segment_max_bytes);
ABSL_DECLARE_FLAG(std::string, max_record_bytes);
ABSL_DECLARE_FLAG(std::string, max_batch_bytes);
ABSL_DECLARE_FLAG(std::string, max_queued_bytes);
ABSL_DECLARE_FLAG(std::string, memtable_budget_bytes);

namespace evlog::server {
namespace {

constexpr int64_t kMiB = int64_t{1} << 20;

TEST(ParseByteSizeTest, AcceptsBytesAndUnits) {
  EXPECT_EQ(*ParseByteSize("f", "1048576"), 1048576);
  EXPECT_EQ(*ParseByteSize("f", "512MiB"), 512 * kMiB);
  EXPECT_EQ(*ParseByteSize("f", "2GiB"), 2048 * kMiB);
  EXPECT_EQ(*ParseByteSize("f", "3KiB"), 3072);
  EXPECT_EQ(*ParseByteSize("f", "1TiB"), int64_t{1} << 40);
  EXPECT_EQ(*ParseByteSize("f", "5MB"), 5000000);
  EXPECT_EQ(*ParseByteSize("f", "7B"), 7);
  EXPECT_EQ(*ParseByteSize("f", "0"), 0);
}

TEST(ParseByteSizeTest, RejectsOtherFormsNamingTheFlag) {
  for (const char* bad : {"", "MiB", "-1", "1.5GiB", "1 GiB", "1gib", "1Mb", "1GiBs", "0x10",
                          "99999999999999999999", "5000000TiB"}) {
    absl::StatusOr<int64_t> parsed = ParseByteSize("memory-budget", bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(parsed.status().message().find("--memory-budget="), absl::string_view::npos);
    EXPECT_NE(parsed.status().message().find("512MiB"), absl::string_view::npos);
  }
}

TEST(FormatByteSizeTest, UsesTheLargestExactUnit) {
  EXPECT_EQ(FormatByteSize(256 * kMiB), "256MiB");
  EXPECT_EQ(FormatByteSize(int64_t{1} << 30), "1GiB");
  EXPECT_EQ(FormatByteSize(1000), "1000B");
  EXPECT_EQ(FormatByteSize(3 * kMiB / 2 + 1), "1.5MiB");
  EXPECT_EQ(FormatByteSize(0), "0B");
}

TEST(SplitMemoryBudgetTest, SharesAddUpToTheTotal) {
  absl::StatusOr<MemoryBudget> b = SplitMemoryBudget(256 * kMiB);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->memtables, 64 * kMiB);
  EXPECT_EQ(b->block_cache, 32 * kMiB);
  EXPECT_EQ(b->writer_queue, 32 * kMiB);
  EXPECT_EQ(b->writer_queue_per_topic, 16 * kMiB);
  EXPECT_EQ(b->inflight, 32 * kMiB);
  EXPECT_EQ(b->inflight_per_connection, 4 * kMiB);
  EXPECT_EQ(b->grpc, 32 * kMiB);
  EXPECT_EQ(b->memtables + b->block_cache + b->writer_queue + b->inflight + b->grpc + b->unassigned,
            b->total);
  EXPECT_NE(DescribeMemoryBudget(*b).find("memtables 64MiB"), std::string::npos);
}

TEST(SplitMemoryBudgetTest, RefusesBudgetsBelowTheMinimum) {
  absl::StatusOr<MemoryBudget> b = SplitMemoryBudget(kMinMemoryBudgetBytes - 1);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(b.status().message().find("minimum of 64MiB"), absl::string_view::npos);
  EXPECT_TRUE(SplitMemoryBudget(kMinMemoryBudgetBytes).ok());
}

TEST(ByteBudgetTest, LetsInWhatFitsAndOneOversizedRequestAlone) {
  const absl::Time t0 = absl::UnixEpoch();
  ByteBudget budget(100, t0);
  EXPECT_TRUE(budget.Fits(100));
  budget.Charge(60);
  EXPECT_TRUE(budget.Fits(40));
  EXPECT_FALSE(budget.Fits(41));
  budget.Release(60, t0);
  EXPECT_TRUE(budget.Fits(1000));  // empty: an oversized request is let in alone
  budget.Charge(1000);
  EXPECT_FALSE(budget.Fits(1));
}

TEST(ByteBudgetTest, HintIsTheTimeToDrainWhatMustLeave) {
  absl::Time now = absl::UnixEpoch();
  ByteBudget budget(1000 * kMiB, now);
  // Drain 100 MiB/s for 5 s (10 ms steps): the rate estimate converges to ~100 MiB/s.
  for (int i = 0; i < 500; ++i) {
    budget.Charge(kMiB);
    now += absl::Milliseconds(10);
    budget.Release(kMiB, now);
  }
  EXPECT_NEAR(budget.DrainRate(now), 100.0 * kMiB, 2.0 * kMiB);
  budget.Charge(1000 * kMiB - 10 * kMiB);
  // 20 MiB must leave for a 30 MiB request: ~200 ms at 100 MiB/s.
  const int64_t first = budget.Refuse(30 * kMiB, now);
  EXPECT_GE(first, 190);
  EXPECT_LE(first, 215);
  // The refused 30 MiB come back ahead of the next one: its hint grows by ~300 ms.
  const int64_t second = budget.Refuse(30 * kMiB, now);
  EXPECT_GE(second, 480);
  EXPECT_LE(second, 520);
}

TEST(ByteBudgetTest, HintsStayWithinBounds) {
  absl::Time now = absl::UnixEpoch();
  ByteBudget stalled(100, now);
  stalled.Charge(100);
  EXPECT_EQ(stalled.Refuse(1, now), kMaxRetryAfterMs);  // nothing ever drained
  ByteBudget fast(100, now);
  fast.Charge(10);
  fast.Release(10, now);
  fast.Charge(100);
  for (int i = 0; i < 100; ++i) {
    fast.Charge(1);
    now += absl::Microseconds(1);
    fast.Release(1 << 20, now);  // a huge rate
    fast.Charge((1 << 20) - 1);
  }
  EXPECT_EQ(fast.Refuse(1, now), kMinRetryAfterMs);
}

TEST(ByteBudgetTest, RefusedBytesAreForgottenOverTime) {
  absl::Time now = absl::UnixEpoch();
  ByteBudget budget(100, now);
  budget.Charge(100);
  budget.Release(100, now);  // rate 100 B/s
  budget.Charge(100);
  for (int i = 0; i < 10; ++i) budget.Refuse(50, now);  // 500 refused bytes: ~5 s of drain
  EXPECT_EQ(budget.Refuse(1, now), kMaxRetryAfterMs);
  now += absl::Seconds(3);  // both averages decay; the refused bytes much faster
  budget.Release(100, now);
  budget.Charge(100);
  EXPECT_LT(budget.Refuse(1, now), kMaxRetryAfterMs);
}

// A clock tests move by hand.
class FakeClock {
 public:
  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::UnixEpoch();
};

class AdmissionControllerTest : public ::testing::Test {
 protected:
  std::unique_ptr<AdmissionController> Make(const AdmissionLimits& limits) {
    auto controller =
        std::make_unique<AdmissionController>(limits, [this] { return clock_.Now(); });
    controller->SetRefusalObserver(
        [this](absl::string_view reason) { reasons_.push_back(std::string(reason)); });
    return controller;
  }
  FakeClock clock_;
  std::vector<std::string> reasons_;  // only the test thread refuses
};

TEST_F(AdmissionControllerTest, CapsConnectionsNotCallsOfAnAdmittedOne) {
  AdmissionLimits limits;
  limits.max_connections = 2;
  auto admission = Make(limits);
  auto a1 = admission->StartCall("ipv4:127.0.0.1:1");
  auto a2 = admission->StartCall("ipv4:127.0.0.1:1");
  auto b = admission->StartCall("ipv4:127.0.0.1:2");
  ASSERT_TRUE(a1.ok() && a2.ok() && b.ok());
  EXPECT_EQ(*a1, *a2);
  absl::StatusOr<AdmissionController::Connection*> c = admission->StartCall("ipv4:127.0.0.1:3");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(c.status().message().find("--max-connections=2"), absl::string_view::npos);
  EXPECT_GE(RetryHintOf(c.status()), kMinRetryAfterMs);
  EXPECT_LE(RetryHintOf(c.status()), kMaxRetryAfterMs);
  EXPECT_EQ(reasons_, std::vector<std::string>{std::string(kRefusedConnectionLimit)});
  EXPECT_EQ(admission->Stats().refused_connections, 1);

  admission->EndCall(*a1);  // connection 1 still has a call
  EXPECT_FALSE(admission->StartCall("ipv4:127.0.0.1:3").ok());
  admission->EndCall(*a2);  // now it has none: its place is free
  auto c2 = admission->StartCall("ipv4:127.0.0.1:3");
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(admission->Stats().connections, 2);
  admission->EndCall(*b);
  admission->EndCall(*c2);
  EXPECT_EQ(admission->Stats().connections, 0);
}

TEST_F(AdmissionControllerTest, ConnectionHintsGrowWithTheStorm) {
  AdmissionLimits limits;
  limits.max_connections = 1;
  limits.base_retry_after_ms = 100;
  auto admission = Make(limits);
  auto held = admission->StartCall("a");
  ASSERT_TRUE(held.ok());
  int64_t last = 0;
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<AdmissionController::Connection*> refused =
        admission->StartCall(absl::StrCat("peer", i));
    ASSERT_FALSE(refused.ok());
    EXPECT_GT(RetryHintOf(refused.status()), last);
    last = RetryHintOf(refused.status());
  }
  EXPECT_LE(last, kMaxRetryAfterMs);
  admission->EndCall(*held);
}

TEST_F(AdmissionControllerTest, ChargesGlobalAndPerConnectionBudgets) {
  AdmissionLimits limits;
  limits.max_inflight_bytes = 1000;  // the last 250 are reserved for light connections
  limits.max_connection_inflight_bytes = 600;
  auto admission = Make(limits);
  auto a = admission->StartCall("a");
  auto b = admission->StartCall("b");
  ASSERT_TRUE(a.ok() && b.ok());

  ASSERT_TRUE(admission->Charge(*a, 300).ok());
  absl::Status over_connection = admission->Charge(*a, 400);  // 700 > 600 on connection a
  EXPECT_EQ(over_connection.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(over_connection.message().find("this connection's"), absl::string_view::npos);
  EXPECT_GE(RetryHintOf(over_connection), kMinRetryAfterMs);
  ASSERT_TRUE(admission->Charge(*b, 450).ok());  // 750: the shared part is full
  absl::Status over_global = admission->Charge(*b, 100);
  EXPECT_EQ(over_global.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(over_global.message().find("the server's"), absl::string_view::npos);
  EXPECT_EQ(admission->inflight_bytes(), 750);  // refusals charge nothing

  clock_.Advance(absl::Milliseconds(100));
  admission->Release(*b, 450);
  EXPECT_TRUE(admission->Charge(*b, 100).ok());
  AdmissionStats stats = admission->Stats();
  EXPECT_EQ(stats.inflight_bytes, 400);
  EXPECT_EQ(stats.refused_connection_bytes, 1);
  EXPECT_EQ(stats.refused_inflight, 1);
  EXPECT_EQ(reasons_.size(), 2u);
  for (const std::string& r : reasons_) EXPECT_EQ(r, kRefusedInflightBudget);

  admission->Release(*a, 300);
  admission->Release(*b, 100);
  EXPECT_EQ(admission->inflight_bytes(), 0);
  admission->EndCall(*a);
  admission->EndCall(*b);
}

TEST_F(AdmissionControllerTest, LightConnectionsGetTheReserveWhenFloodersFillTheRest) {
  AdmissionLimits limits;
  limits.max_inflight_bytes = 6400;  // reserve 1600; light: at most 100 bytes in flight
  limits.max_connection_inflight_bytes = 6400;
  auto admission = Make(limits);
  auto flood = admission->StartCall("flood");
  auto quiet = admission->StartCall("quiet");
  ASSERT_TRUE(flood.ok() && quiet.ok());
  ASSERT_TRUE(admission->Charge(*flood, 4800).ok());
  EXPECT_FALSE(admission->Charge(*flood, 1).ok());  // the flooder stops at the reserve
  EXPECT_TRUE(admission->Charge(*quiet, 60).ok());  // a light connection gets in
  EXPECT_TRUE(admission->Charge(*quiet, 40).ok());
  EXPECT_FALSE(admission->Charge(*quiet, 1).ok());  // ... while it stays light
  admission->Release(*quiet, 100);
  admission->Release(*flood, 4800);
  admission->EndCall(*flood);
  admission->EndCall(*quiet);
}

TEST_F(AdmissionControllerTest, StorageRefusalsGetAHintOnce) {
  auto admission = Make(AdmissionLimits{});
  absl::Status hinted =
      admission->HintStorageRefusal(absl::ResourceExhaustedError("queue full"), 4096);
  EXPECT_EQ(hinted.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_GE(RetryHintOf(hinted), kMinRetryAfterMs);
  EXPECT_LE(RetryHintOf(hinted), kMaxRetryAfterMs);
  // An existing hint (a quota's) is kept; other codes pass through untouched.
  absl::Status quota = WithRetryHint(absl::ResourceExhaustedError("quota"), 777);
  EXPECT_EQ(RetryHintOf(admission->HintStorageRefusal(quota, 1)), 777);
  EXPECT_EQ(RetryHintOf(admission->HintStorageRefusal(absl::NotFoundError("t"), 1)), 0);
  EXPECT_TRUE(reasons_.empty());  // storage refusals are counted by storage's reason
}

TEST(StatusMappingTest, ComputedHintsWinOverTheDefault) {
  evlog::v1::Error error;
  FillError(WithRetryHint(absl::ResourceExhaustedError("x"), 250), 100, &error);
  EXPECT_EQ(error.retry_after_ms(), 250);
  FillError(absl::ResourceExhaustedError("x"), 100, &error);
  EXPECT_EQ(error.retry_after_ms(), 100);
}

// Every byte-size flag takes the sizes --memory-budget takes (common/byte_size.h).
TEST(ByteSizeFlagsTest, TakeUnits) {
  absl::SetFlag(&FLAGS_max_write_group_bytes, "1MiB");
  absl::SetFlag(&FLAGS_segment_max_bytes, "64MiB");
  absl::SetFlag(&FLAGS_max_record_bytes, "512KiB");
  absl::SetFlag(&FLAGS_max_batch_bytes, "1MiB");
  absl::SetFlag(&FLAGS_max_queued_bytes, "16MiB");
  absl::SetFlag(&FLAGS_memtable_budget_bytes, "8MiB");
  absl::StatusOr<ServerOptions> options = OptionsFromFlags();
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->store.max_write_group_bytes, 1u * kMiB);
  EXPECT_EQ(options->store.segment_max_bytes, 64u * kMiB);
  EXPECT_EQ(options->limits.max_record_bytes, kMiB / 2);
  EXPECT_EQ(options->limits.max_batch_bytes, kMiB);
  EXPECT_EQ(options->store.max_queued_bytes, 16u * kMiB);
  EXPECT_EQ(options->store.memtable_budget_bytes, 8u * kMiB);
  absl::SetFlag(&FLAGS_max_write_group_bytes, "0");
  EXPECT_EQ(OptionsFromFlags().status().code(), absl::StatusCode::kInvalidArgument);
  absl::SetFlag(&FLAGS_max_write_group_bytes, "256KiB");
  absl::SetFlag(&FLAGS_segment_max_bytes, "256MiB");
  absl::SetFlag(&FLAGS_max_record_bytes, "1MiB");
  absl::SetFlag(&FLAGS_max_batch_bytes, "2MiB");
  absl::SetFlag(&FLAGS_max_queued_bytes, "0");
  absl::SetFlag(&FLAGS_memtable_budget_bytes, "0");
}

TEST(MemoryBudgetFlagTest, SetsTheSharesAndFinerFlagsOverrideThem) {
  absl::SetFlag(&FLAGS_memory_budget, "256MiB");
  absl::SetFlag(&FLAGS_block_cache_bytes, "0");
  absl::StatusOr<ServerOptions> options = OptionsFromFlags();
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->memory.total, 256 * kMiB);
  EXPECT_EQ(options->store.memtable_budget_bytes, 64u * kMiB);
  EXPECT_EQ(options->store.block_cache_bytes, 32u * kMiB);
  EXPECT_EQ(options->store.max_queued_bytes, 32u * kMiB);
  EXPECT_EQ(options->store.max_topic_queued_bytes, 16u * kMiB);
  EXPECT_EQ(options->admission.max_inflight_bytes, 32 * kMiB);
  EXPECT_EQ(options->admission.max_connection_inflight_bytes, 4 * kMiB);

  absl::SetFlag(&FLAGS_block_cache_bytes, "5MiB");
  options = OptionsFromFlags();
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->store.block_cache_bytes, 5u * kMiB);
  absl::SetFlag(&FLAGS_block_cache_bytes, "5242880");  // plain bytes still work
  options = OptionsFromFlags();
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->store.block_cache_bytes, 5u * kMiB);
  for (const char* bad : {"-1", "5Mb", "lots"}) {
    absl::SetFlag(&FLAGS_block_cache_bytes, bad);
    EXPECT_EQ(OptionsFromFlags().status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  absl::SetFlag(&FLAGS_block_cache_bytes, "0");

  absl::SetFlag(&FLAGS_memory_budget, "32MiB");
  EXPECT_EQ(OptionsFromFlags().status().code(), absl::StatusCode::kInvalidArgument);
  absl::SetFlag(&FLAGS_memory_budget, "lots");
  EXPECT_EQ(OptionsFromFlags().status().code(), absl::StatusCode::kInvalidArgument);
  absl::SetFlag(&FLAGS_memory_budget, "1GiB");
  absl::SetFlag(&FLAGS_block_cache_bytes, "0");
}

}  // namespace
}  // namespace evlog::server
