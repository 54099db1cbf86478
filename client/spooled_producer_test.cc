// SpooledProducer and the spool commands against real evlogd processes behind a FaultProxy:
// the server unreachable (refused, blackholed) and back, the server SIGKILLed mid-drain, the
// producer SIGKILLed mid-drain and restarted on its spool, a deleted topic (dead letters), and
// `evlog produce --spool-dir` / `evlog spool status|drain` end to end. Every check is "each
// event stored exactly once, in the order sent, per partition".
#include "client/spooled_producer.h"

#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "client/admin.h"
#include "client/reader.h"
#include "client/testing/child_process.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fault_proxy/fault_proxy.h"
#include "tests/testing/server_process.h"

namespace evlog::client {
namespace {

using ::evlog::testing::FaultProxy;
using ::evlog::testing::ServerProcess;
using ::evlog::testing::TempDir;

int PortOf(const std::string& address) { return std::stoi(address.substr(address.rfind(':') + 1)); }

class SpooledProducerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = ServerProcess::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto proxy = FaultProxy::Start("127.0.0.1", PortOf(server_->address()));
    ASSERT_TRUE(proxy.ok()) << proxy.status();
    proxy_ = std::move(*proxy);
    admin_ = Admin::Create(server_->address(), {.timeout = absl::Seconds(30)});
  }

  void CreateTopic(const std::string& name, int32_t partitions) {
    auto t = admin_->CreateTopic(name, {.partitions = partitions});
    ASSERT_TRUE(t.ok()) << t.status();
  }

  void RestartServer(bool kill) {
    if (kill) {
      server_->Kill();
    } else {
      ASSERT_TRUE(server_->Terminate().ok());
    }
    ASSERT_TRUE(server_->Restart().ok());
    proxy_->SetUpstreamPort(PortOf(server_->address()));
    admin_ = Admin::Create(server_->address(), {.timeout = absl::Seconds(30)});
  }

  // Every value stored in `topic`, per partition, in offset order.
  std::map<int32_t, std::vector<std::string>> ReadTopic(const std::string& topic) {
    std::map<int32_t, std::vector<std::string>> out;
    auto t = admin_->DescribeTopic(topic);
    EXPECT_TRUE(t.ok()) << t.status();
    if (!t.ok()) return out;
    auto reader = Reader::Create(server_->address());
    for (const auto& p : t->partitions) {
      ReadSpec spec;
      spec.topic = topic;
      spec.partition = p.partition;
      spec.offset = p.start_offset;
      spec.deadline = absl::Now() + absl::Seconds(30);
      auto stream = reader->Open(spec);
      std::vector<ConsumedRecord> records;
      while (stream->Next(&records)) {
        for (const auto& r : records) out[p.partition].push_back(r.value);
      }
      EXPECT_TRUE(stream->Finish().ok());
    }
    return out;
  }

  // Asserts that `topic` holds exactly `sent` (values per partition, in send order).
  void ExpectExactlyOnceInOrder(const std::string& topic,
                                const std::map<int32_t, std::vector<std::string>>& sent) {
    auto stored = ReadTopic(topic);
    for (const auto& [partition, values] : sent) {
      const auto& got = stored[partition];
      ASSERT_EQ(got.size(), values.size()) << "partition " << partition;
      for (size_t i = 0; i < values.size(); ++i) {
        ASSERT_EQ(got[i], values[i]) << "partition " << partition << " offset " << i;
      }
    }
    for (const auto& [partition, values] : stored) {
      EXPECT_TRUE(sent.count(partition) > 0 || values.empty()) << "partition " << partition;
    }
  }

  SpooledProducerOptions FastOptions() {
    SpooledProducerOptions o;
    o.ack_timeout = absl::Seconds(2);
    o.call_timeout = absl::Seconds(2);
    o.backoff.max = absl::Milliseconds(500);
    return o;
  }

  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<FaultProxy> proxy_;
  std::unique_ptr<Admin> admin_;
};

// Sends `n` keyed records; returns what went where (by the producer's own partitioning).
std::map<int32_t, std::vector<std::string>> SendKeyed(SpooledProducer& producer,
                                                      const std::string& topic, int n,
                                                      const std::string& tag) {
  absl::Mutex mu;
  std::map<int32_t, std::vector<std::string>> sent;
  for (int i = 0; i < n; ++i) {
    const std::string value = absl::StrCat(tag, "-", i);
    ProducerRecord r{.key = absl::StrCat("key", i % 7), .value = value};
    // The partition is known as soon as the record is spooled; Send's order is the order
    // within each partition.
    absl::Status s =
        producer.Send(topic, std::move(r), std::nullopt, [&mu, &sent, value](const SendOutcome& o) {
          if (o.state != SendOutcome::State::kSpooled) return;
          absl::MutexLock lock(&mu);
          sent[o.partition].push_back(value);
        });
    EXPECT_TRUE(s.ok()) << s;
  }
  EXPECT_TRUE(producer.WaitSpooled(absl::Now() + absl::Seconds(30)).ok());
  absl::MutexLock lock(&mu);
  return sent;
}

TEST_F(SpooledProducerTest, KeepsAcceptingWhileRefusedAndDeliversExactlyOnceInOrder) {
  CreateTopic("refused", 3);
  TempDir spool_dir("spooled");
  auto producer = SpooledProducer::Open(proxy_->address(), spool_dir.path(), FastOptions());
  ASSERT_TRUE(producer.ok()) << producer.status();
  auto sent = SendKeyed(**producer, "refused", 100, "up");
  auto first = (*producer)->Flush(absl::Now() + absl::Seconds(30));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->acknowledged, 100);

  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kRefuse).ok());
  proxy_->ResetAll();
  auto down = SendKeyed(**producer, "refused", 3000, "down");
  for (auto& [p, v] : down) sent[p].insert(sent[p].end(), v.begin(), v.end());
  auto during = (*producer)->Flush(absl::Now() + absl::Milliseconds(500));
  ASSERT_TRUE(during.ok()) << during.status();
  EXPECT_EQ(during->sent, 3100);
  EXPECT_EQ(during->acknowledged + during->spooled, 3100);  // every record durable somewhere
  EXPECT_GT(during->spooled, 0);
  EXPECT_GT((*producer)->Stats().spool_records, 0);

  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
  ASSERT_TRUE((*producer)->WaitUntilDrained(absl::Now() + absl::Seconds(60)).ok());
  auto closed = (*producer)->Close(absl::Now() + absl::Seconds(10));
  ASSERT_TRUE(closed.ok());
  EXPECT_EQ(closed->acknowledged, 3100);
  EXPECT_EQ(closed->spooled, 0);
  ExpectExactlyOnceInOrder("refused", sent);
}

TEST_F(SpooledProducerTest, ServerKilledMidDrainAndRestartedStoresEachEventOnce) {
  CreateTopic("killed", 2);
  TempDir spool_dir("spooled");
  SpooledProducerOptions options = FastOptions();
  options.batch_max_records = 50;  // many batches, so the kill lands mid-drain
  auto producer = SpooledProducer::Open(proxy_->address(), spool_dir.path(), options);
  ASSERT_TRUE(producer.ok()) << producer.status();
  auto sent = SendKeyed(**producer, "killed", 10, "warm");
  ASSERT_TRUE((*producer)->Flush(absl::Now() + absl::Seconds(30)).ok());
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kRefuse).ok());
  proxy_->ResetAll();
  auto more = SendKeyed(**producer, "killed", 20000, "backlog");
  for (auto& [p, v] : more) sent[p].insert(sent[p].end(), v.begin(), v.end());
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
  // Let some of the backlog through, then kill the server under it.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while ((*producer)->Stats().records_acknowledged < 2000 && absl::Now() < deadline) {
    (*producer)->WaitUntilDrained(absl::Now() + absl::Milliseconds(5)).IgnoreError();
  }
  RestartServer(/*kill=*/true);
  ASSERT_TRUE((*producer)->WaitUntilDrained(absl::Now() + absl::Seconds(60)).ok())
      << (*producer)->LastDeliveryError();
  ExpectExactlyOnceInOrder("killed", sent);
}

TEST_F(SpooledProducerTest, BlackholedPathThenPassDrains) {
  CreateTopic("blackhole", 1);
  TempDir spool_dir("spooled");
  auto producer = SpooledProducer::Open(proxy_->address(), spool_dir.path(), FastOptions());
  ASSERT_TRUE(producer.ok()) << producer.status();
  auto sent = SendKeyed(**producer, "blackhole", 10, "before");
  ASSERT_TRUE((*producer)->Flush(absl::Now() + absl::Seconds(30)).ok());
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kBlackhole).ok());
  auto more = SendKeyed(**producer, "blackhole", 2000, "cut");
  for (auto& [p, v] : more) sent[p].insert(sent[p].end(), v.begin(), v.end());
  // Wait until the drain noticed (an ack overdue) before the path comes back.
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while ((*producer)->Stats().reconnects == 0 && absl::Now() < deadline) {
    (*producer)->WaitUntilDrained(absl::Now() + absl::Milliseconds(50)).IgnoreError();
  }
  EXPECT_GT((*producer)->Stats().reconnects, 0);
  EXPECT_GT((*producer)->Stats().spool_records, 0);
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
  proxy_->ResetAll();
  ASSERT_TRUE((*producer)->WaitUntilDrained(absl::Now() + absl::Seconds(60)).ok())
      << (*producer)->LastDeliveryError();
  ExpectExactlyOnceInOrder("blackhole", sent);
}

TEST_F(SpooledProducerTest, DeletedTopicIsDeadLetteredAndOthersContinue) {
  CreateTopic("doomed", 1);
  CreateTopic("fine", 1);
  TempDir spool_dir("spooled");
  auto producer = SpooledProducer::Open(proxy_->address(), spool_dir.path(), FastOptions());
  ASSERT_TRUE(producer.ok()) << producer.status();
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kRefuse).ok());
  proxy_->ResetAll();
  std::map<int32_t, std::vector<std::string>> fine;
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE((*producer)->Send("doomed", {.value = absl::StrCat("d", i)}, 0).ok());
    ASSERT_TRUE((*producer)->Send("fine", {.value = absl::StrCat("f", i)}, 0).ok());
    fine[0].push_back(absl::StrCat("f", i));
    if (i % 100 == 99) {  // several batches
      ASSERT_TRUE((*producer)->WaitSpooled(absl::Now() + absl::Seconds(30)).ok());
    }
  }
  ASSERT_TRUE((*producer)->WaitSpooled(absl::Now() + absl::Seconds(30)).ok());
  ASSERT_TRUE(admin_->DeleteTopic("doomed").ok());
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
  ASSERT_TRUE((*producer)->WaitUntilDrained(absl::Now() + absl::Seconds(60)).ok())
      << (*producer)->LastDeliveryError();
  const SpooledProducerStats stats = (*producer)->Stats();
  EXPECT_EQ(stats.records_dead_lettered, 300);
  EXPECT_GT(stats.batches_dead_lettered, 0);
  EXPECT_EQ(stats.records_acknowledged, 300);
  auto closed = (*producer)->Close(absl::Now());
  ASSERT_TRUE(closed.ok());
  EXPECT_EQ(closed->dead_lettered, 300);
  producer->reset();
  ExpectExactlyOnceInOrder("fine", fine);
  auto st = Spool::Inspect(spool_dir.path());
  ASSERT_TRUE(st.ok()) << st.status();
  int64_t dead = 0;
  for (const auto& d : st->dead_letters) {
    dead += d.records;
    EXPECT_EQ(d.topic, "doomed");
    EXPECT_NE(d.reason.find("NOT_FOUND"), std::string::npos) << d.reason;
  }
  EXPECT_EQ(dead, 300);
  EXPECT_EQ(st->pending_records, 0);
}

TEST_F(SpooledProducerTest, RestartedProducerResumesTheSpoolWithoutDuplicates) {
  CreateTopic("resume", 2);
  TempDir spool_dir("spooled");
  std::map<int32_t, std::vector<std::string>> sent;
  {
    SpooledProducerOptions options = FastOptions();
    options.batch_max_records = 40;
    auto producer = SpooledProducer::Open(proxy_->address(), spool_dir.path(), options);
    ASSERT_TRUE(producer.ok()) << producer.status();
    sent = SendKeyed(**producer, "resume", 10, "a");
    ASSERT_TRUE((*producer)->Flush(absl::Now() + absl::Seconds(30)).ok());
    ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kRefuse).ok());
    proxy_->ResetAll();
    auto more = SendKeyed(**producer, "resume", 5000, "b");
    for (auto& [p, v] : more) sent[p].insert(sent[p].end(), v.begin(), v.end());
    ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while ((*producer)->Stats().records_acknowledged < 500 && absl::Now() < deadline) {
      (*producer)->WaitUntilDrained(absl::Now() + absl::Milliseconds(5)).IgnoreError();
    }
    // Closed at once mid-drain: the rest stays in the spool (acks possibly unsynced).
    auto closed = (*producer)->Close(absl::Now());
    ASSERT_TRUE(closed.ok());
    EXPECT_EQ(closed->acknowledged + closed->spooled, closed->sent);
  }
  auto producer = SpooledProducer::Open(proxy_->address(), spool_dir.path(), FastOptions());
  ASSERT_TRUE(producer.ok()) << producer.status();
  ASSERT_TRUE((*producer)->WaitUntilDrained(absl::Now() + absl::Seconds(60)).ok());
  producer->reset();
  ExpectExactlyOnceInOrder("resume", sent);
}

TEST_F(SpooledProducerTest, UnknownTopicWhileUnreachableNeedsAPartition) {
  TempDir spool_dir("spooled");
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kRefuse).ok());
  proxy_->ResetAll();
  auto producer = SpooledProducer::Open(proxy_->address(), spool_dir.path(), FastOptions());
  ASSERT_TRUE(producer.ok());
  EXPECT_EQ((*producer)->Send("never-seen", {.value = "x"}).code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE((*producer)->Send("never-seen", {.value = "x"}, 0).ok());
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
  // Once the channel reconnects (gRPC's own backoff, at most 10 s), the server's answer shows.
  absl::Status s = absl::UnavailableError("not tried");
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::IsUnavailable(s) && absl::Now() < deadline) {
    s = (*producer)->Send("no-such-topic", {.value = "x"});
  }
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
}

TEST_F(SpooledProducerTest, SpoolFullFailsWithResourceExhaustedAndNeverDrops) {
  CreateTopic("full", 1);
  TempDir spool_dir("spooled");
  SpooledProducerOptions options = FastOptions();
  options.spool.max_bytes = 64 << 10;
  options.spool.when_full = SpoolFullPolicy::kFail;
  auto producer = SpooledProducer::Open(proxy_->address(), spool_dir.path(), options);
  ASSERT_TRUE(producer.ok());
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kRefuse).ok());
  proxy_->ResetAll();
  std::map<int32_t, std::vector<std::string>> sent;
  absl::Status s;
  for (int i = 0; i < 10000 && s.ok(); ++i) {
    const std::string value = absl::StrCat(std::string(100, 'x'), i);
    s = (*producer)->Send("full", {.value = value}, 0);
    if (s.ok()) sent[0].push_back(value);
  }
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted) << s;
  EXPECT_GT(sent[0].size(), 100u);
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
  absl::Status drained = (*producer)->WaitUntilDrained(absl::Now() + absl::Seconds(60));
  ASSERT_TRUE(drained.ok()) << drained;
  EXPECT_TRUE((*producer)->Send("full", {.value = "after"}, 0).ok());  // room again
  sent[0].push_back("after");
  ASSERT_TRUE((*producer)->Close(absl::Now() + absl::Seconds(30)).ok());
  producer->reset();
  ExpectExactlyOnceInOrder("full", sent);
}

// --- the command line --------------------------------------------------------------------

std::string Lines(const std::string& tag, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) absl::StrAppend(&s, tag, "-", i, "\n");
  return s;
}

std::vector<std::string> Values(const std::string& tag, int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(absl::StrCat(tag, "-", i));
  return v;
}

TEST_F(SpooledProducerTest, CliProducesThroughTheSpoolAndDrainsIt) {
  CreateTopic("cli", 1);
  TempDir tmp("spool-cli");
  const std::string dir = tmp.path() + "/spool";
  const std::string cli = EVLOG_CLI_PATH;
  const std::string server = "--server=" + proxy_->address();

  // Server up: everything acknowledged.
  auto up = evlog::testing::RunCommand({cli, server, "produce", "cli", "--spool-dir=" + dir},
                                       Lines("up", 500));
  ASSERT_TRUE(up.ok()) << up.status();
  EXPECT_EQ(up->exit_code, 0) << up->err;
  EXPECT_NE(up->err.find("produced 500 events: 500 acknowledged"), std::string::npos) << up->err;

  // Server unreachable: exit 0 with the events in the spool.
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kRefuse).ok());
  proxy_->ResetAll();
  auto down = evlog::testing::RunCommand(
      {cli, server, "produce", "cli", "--spool-dir=" + dir, "--drain-timeout=1s"},
      Lines("down", 3000));
  ASSERT_TRUE(down.ok()) << down.status();
  EXPECT_EQ(down->exit_code, 0) << down->err;
  EXPECT_NE(down->err.find("produced 3000 events: 0 acknowledged, 3000 in the spool at " + dir +
                           " (drain with: evlog spool drain " + dir + ")"),
            std::string::npos)
      << down->err;

  auto status = evlog::testing::RunCommand({cli, "spool", "status", dir, "--json"});
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(status->exit_code, 0) << status->err;
  auto j = nlohmann::json::parse(status->out);
  EXPECT_EQ(j["pending_records"], 3000);
  EXPECT_EQ(j["dead_letter_records"], 0);
  EXPECT_GT(j["producer_id"].get<int64_t>(), 0);
  auto text = evlog::testing::RunCommand({cli, "spool", "status", dir});
  ASSERT_TRUE(text.ok());
  EXPECT_NE(text->out.find("3000 records"), std::string::npos) << text->out;

  // Drain fails while unreachable (nothing delivered within --timeout), keeping everything.
  auto stuck = evlog::testing::RunCommand({cli, server, "--timeout=1s", "spool", "drain", dir});
  ASSERT_TRUE(stuck.ok());
  EXPECT_EQ(stuck->exit_code, 1) << stuck->err;
  EXPECT_NE(stuck->err.find("3000 still in the spool"), std::string::npos) << stuck->err;

  // The path is back: a drain started and SIGKILLed, then one to the end.
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kPass).ok());
  {
    auto child = evlog::testing::ChildProcess::Start({cli, server, "spool", "drain", dir});
    ASSERT_TRUE(child.ok());
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      auto t = admin_->DescribeTopic("cli");
      if (t.ok() && t->partitions[0].end_offset > 500) break;
      absl::SleepFor(absl::Milliseconds(1));  // polling the server's state, with a deadline
    }
    (*child)->Signal(SIGKILL);
    (*child)->Wait(absl::Now() + absl::Seconds(10));
  }
  auto drain = evlog::testing::RunCommand({cli, server, "spool", "drain", dir});
  ASSERT_TRUE(drain.ok());
  EXPECT_EQ(drain->exit_code, 0) << drain->err;
  EXPECT_NE(drain->err.find("the spool is empty"), std::string::npos) << drain->err;

  std::vector<std::string> all = Values("up", 500);
  for (const auto& v : Values("down", 3000)) all.push_back(v);
  ExpectExactlyOnceInOrder("cli", {{0, all}});
}

TEST_F(SpooledProducerTest, CliSpoolFullWithFailModeExitsOne) {
  CreateTopic("cli-full", 1);
  TempDir tmp("spool-cli");
  const std::string dir = tmp.path() + "/spool";
  ASSERT_TRUE(proxy_->SetMode(FaultProxy::Mode::kRefuse).ok());
  proxy_->ResetAll();
  auto r = evlog::testing::RunCommand(
      {EVLOG_CLI_PATH, "--server=" + proxy_->address(), "produce", "cli-full", "--partition=0",
       "--spool-dir=" + dir, "--spool-max-bytes=16KiB", "--spool-full=fail", "--drain-timeout=0s"},
      Lines(std::string(100, 'y'), 1000));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1) << r->err;
  EXPECT_NE(r->err.find("RESOURCE_EXHAUSTED"), std::string::npos) << r->err;
  EXPECT_NE(r->err.find("in the spool at"), std::string::npos) << r->err;
  // Usage errors are exit 2.
  auto usage =
      evlog::testing::RunCommand({EVLOG_CLI_PATH, "produce", "cli-full", "--spool-max-bytes=lots"});
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->exit_code, 2) << usage->err;
}

}  // namespace
}  // namespace evlog::client
