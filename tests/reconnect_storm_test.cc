// The reconnect-storm test of issue #6: 500 clients connect within about a second (as after a
// network cut heals), each on its own TCP connection, and each opens a produce stream and
// writes one event. evlogd runs with --max-connections=200: the connections beyond the cap are
// refused cleanly (RESOURCE_EXHAUSTED with a retry hint, never a hang or a crash), health stays
// SERVING, and once the admitted clients finish, every refused client gets in on retry, so all
// 500 events are written exactly once.
//
// Each admitted client holds its stream open until every client has made its first attempt, so
// that the cap is really reached (otherwise quick calls would end before others arrive).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "evlog/v1/evlog.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/load_test_util.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

constexpr int kClients = 500;
constexpr int kMaxConnections = 200;
constexpr char kTopic[] = "storm";
constexpr absl::Duration kDeadline = absl::Seconds(60);

// Outcomes over all clients. Thread-safe.
struct StormLedger {
  absl::Mutex mu;
  int attempted_once ABSL_GUARDED_BY(mu) = 0;  // clients past their first attempt
  int holding ABSL_GUARDED_BY(mu) = 0;         // admitted streams open right now
  int max_holding ABSL_GUARDED_BY(mu) = 0;
  int admitted_first_try ABSL_GUARDED_BY(mu) = 0;
  int succeeded ABSL_GUARDED_BY(mu) = 0;
  int refused_exhausted ABSL_GUARDED_BY(mu) = 0;
  int refused_without_hint ABSL_GUARDED_BY(mu) = 0;
  int refused_unavailable ABSL_GUARDED_BY(mu) = 0;
  int64_t max_hint_ms ABSL_GUARDED_BY(mu) = 0;
  std::vector<std::string> problems ABSL_GUARDED_BY(mu);
  absl::Time first_connect ABSL_GUARDED_BY(mu) = absl::InfiniteFuture();
  absl::Time last_connect ABSL_GUARDED_BY(mu) = absl::InfinitePast();
};

// One client: connect, open a stream, write one event; on refusal wait the hint (jittered) and
// try again on the same connection.
void RunClient(int id, std::shared_ptr<grpc::Channel> channel, const std::atomic<bool>* go,
               StormLedger* ledger) {
  auto stub = evlog::v1::ProducerService::NewStub(channel);
  std::mt19937 rng(id);
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  while (!go->load()) std::this_thread::yield();  // all 500 start together
  const absl::Time deadline = absl::Now() + kDeadline;
  bool first = true;
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    if (first) {  // the channel connects with its first call
      absl::MutexLock lock(&ledger->mu);
      ledger->first_connect = std::min(ledger->first_connect, absl::Now());
      ledger->last_connect = std::max(ledger->last_connect, absl::Now());
    }
    auto stream = stub->Produce(&context);
    evlog::v1::ProduceRequest request = MakeBatch(kTopic, 0, {absl::StrCat("client ", id)});
    request.set_request_id(1);
    evlog::v1::ProduceResponse response;
    const bool answered = stream->Write(request) && stream->Read(&response);
    if (answered && !response.has_error()) {
      {
        absl::MutexLock lock(&ledger->mu);
        ++ledger->holding;
        ledger->max_holding = std::max(ledger->max_holding, ledger->holding);
        if (first) {
          ++ledger->admitted_first_try;
          ++ledger->attempted_once;
        }
        // Hold the connection's place until every client has tried once.
        auto all_tried = [](StormLedger* l) ABSL_EXCLUSIVE_LOCKS_REQUIRED(l->mu) {
          return l->attempted_once >= kClients;
        };
        ledger->mu.AwaitWithDeadline(absl::Condition(+all_tried, ledger), deadline);
        --ledger->holding;
        ++ledger->succeeded;
      }
      stream->WritesDone();
      const grpc::Status end = stream->Finish();
      if (!end.ok()) {
        absl::MutexLock lock(&ledger->mu);
        ledger->problems.push_back(absl::StrCat("client ", id, " stream end: ", Describe(end)));
      }
      return;
    }
    // Refused (or a per-request error): find out how, then retry after the hint.
    int64_t hint = 0;
    grpc::Status status;
    if (answered) {
      status = grpc::Status(static_cast<grpc::StatusCode>(response.error().code()),
                            response.error().message());
      hint = response.error().retry_after_ms();
      stream->WritesDone();
      stream->Finish();
    } else {
      status = stream->Finish();
      hint = TrailerHint(context);
    }
    {
      absl::MutexLock lock(&ledger->mu);
      if (first) ++ledger->attempted_once;
      if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
        ++ledger->refused_exhausted;
        if (hint <= 0) ++ledger->refused_without_hint;
        ledger->max_hint_ms = std::max(ledger->max_hint_ms, hint);
      } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
        ++ledger->refused_unavailable;  // e.g. a connection attempt the kernel's backlog dropped
      } else if (ledger->problems.size() < 20) {
        ledger->problems.push_back(absl::StrCat("client ", id, ": ", Describe(status)));
      }
    }
    first = false;
    absl::SleepFor(absl::Milliseconds(std::max<int64_t>(hint, 50) * jitter(rng)));
  }
  absl::MutexLock lock(&ledger->mu);
  ledger->problems.push_back(absl::StrCat("client ", id, " never got in"));
}

TEST(ReconnectStormTest, FiveHundredConnectionsAreCappedCleanlyThenAllGetIn) {
  ServerProcessOptions options;
  options.extra_flags = {absl::StrCat("--max-connections=", kMaxConnections),
                         "--memory-budget=256MiB"};
  auto server = ServerProcess::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string address = (*server)->address();
  {
    EvlogStubs admin(address);
    ASSERT_TRUE(CreateTopic(admin, kTopic, 1).ok());
  }

  HealthWatcher health(address, 100000, absl::Milliseconds(50), absl::Seconds(5));

  StormLedger ledger;
  std::atomic<bool> go{false};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back(RunClient, i, NewConnection(address, i), &go, &ledger);
  }
  go = true;
  for (std::thread& t : clients) t.join();
  health.Stop();

  // Every client's event is in the log, once.
  EvlogStubs reader(address);
  ReadOutcome read = ReadAll(reader, ReadFrom(kTopic, 0, 0));
  ASSERT_TRUE(read.status.ok()) << Describe(read.status);
  std::set<std::string> values;
  for (const evlog::v1::Record& record : read.records) values.insert(record.value());

  absl::MutexLock lock(&ledger.mu);
  const std::string report = absl::StrFormat(
      "STORM REPORT: %d clients started connecting within %.0f ms; admitted on the first try %d "
      "(cap %d), most holding at once %d; refusals RESOURCE_EXHAUSTED %d (without hint %d, "
      "longest hint %d ms), UNAVAILABLE %d; succeeded %d; records %d (distinct %d); health "
      "%d SERVING, %d not\n",
      kClients, absl::ToDoubleMilliseconds(ledger.last_connect - ledger.first_connect),
      ledger.admitted_first_try, kMaxConnections, ledger.max_holding, ledger.refused_exhausted,
      ledger.refused_without_hint, ledger.max_hint_ms, ledger.refused_unavailable, ledger.succeeded,
      read.records.size(), values.size(), health.serving(), health.not_serving());
  std::fputs(report.c_str(), stdout);
  std::fflush(stdout);
  ::testing::Test::RecordProperty("storm_report", report);

  EXPECT_TRUE((*server)->running()) << (*server)->LogTail();
  EXPECT_TRUE(ledger.problems.empty()) << ledger.problems.size() << " problems, e.g. "
                                       << (ledger.problems.empty() ? "" : ledger.problems[0]);
  EXPECT_LE(ledger.max_holding, kMaxConnections) << "the connection cap did not hold";
  EXPECT_GE(ledger.refused_exhausted, kClients - kMaxConnections - ledger.refused_unavailable);
  EXPECT_EQ(ledger.refused_without_hint, 0);
  EXPECT_EQ(ledger.succeeded, kClients);
  EXPECT_EQ(read.records.size(), static_cast<size_t>(kClients));
  EXPECT_EQ(values.size(), static_cast<size_t>(kClients));
  EXPECT_EQ(health.not_serving(), 0) << health.last_problem();
  EXPECT_GT(health.serving(), 0);
}

}  // namespace
}  // namespace evlog::testing
