// The incident of issue #5 ("Cut off, keep going"), end to end across processes, with time
// compressed:
//
//   1. Steady: producer processes (`evlog produce --spool-dir`, one per key producer-<i>) are
//      fed a steady stream of lines `producer-<i> <seq>` on stdin; they reach evlogd through a
//      FaultProxy. A consumer group (two members of the client library's Consumer, in this
//      process) processes the topic through a second proxy that always passes.
//   2. Cut off: the producers' proxy blackholes them (a firewall dropping packets silently) for
//      EVLOG_INCIDENT_BLACKHOLE_S seconds while feeding goes on; the producers spool. Before
//      the path returns, feeding pauses a moment to check that every line fed is durable:
//      in its producer's spool (`evlog spool status --json`) or already in the log.
//   3. Reconnect: the proxy passes again (t_reconnect). Once a quarter of the backlog reached
//      the log, evlogd is SIGKILLed mid-drain and restarted on its data directory (a new port;
//      both proxies are pointed at it). Feeding then stops (stdin is closed).
//   4. The end: every producer exits 0 having had every line acknowledged, its spool empty;
//      every line is in the log exactly once and in the producer's order within its
//      partition; the group processed every one and its committed offsets equal the end
//      offsets (lag zero). The test prints the backlog spooled at reconnect, the drain time,
//      the events/s after reconnect and the time from reconnect to lag zero.
//
// Scale (environment):
//   EVLOG_INCIDENT_RATE         events/s fed to each producer (default 850: ~100k spooled
//                               events with 4 producers and a 30 s blackhole)
//   EVLOG_INCIDENT_BLACKHOLE_S  seconds the producers are cut off (default 30)
//   EVLOG_INCIDENT_PRODUCERS    producer processes (default 4; the topic has 4 partitions)
//   EVLOG_INCIDENT_STEADY_S     seconds of steady traffic before the cut (default 3)
// E.g. a backlog of ~600k spooled events: EVLOG_INCIDENT_RATE=4800 build/tests/incident_test.
//
// Every wait is on a condition with a deadline; the only fixed durations are the phases of the
// story (steady traffic, the blackhole), which are the scenario, not synchronisation. Nothing
// asserts on elapsed time: the times are measured and printed.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/admin.h"
#include "client/consumer.h"
#include "client/group_admin.h"
#include "client/reader.h"
#include "client/testing/child_process.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "proto/evlog/v1/partitioner.h"
#include "tests/fault_proxy/fault_proxy.h"
#include "tests/testing/server_process.h"

namespace evlog {
namespace {

using client::Admin;
using client::ConsumedRecord;
using client::Consumer;
using client::GroupAdmin;
using client::Reader;
using testing::ChildProcess;
using testing::FaultProxy;
using testing::ServerProcess;
using testing::TempDir;

constexpr char kTopic[] = "incident";
constexpr char kGroup[] = "incident-processors";
constexpr int32_t kPartitions = 4;
constexpr int kConsumers = 2;

// ---- Configuration ----

double EnvNumber(const char* name, double fallback) {
  const char* v = std::getenv(name);
  double d = 0;
  if (v == nullptr || !absl::SimpleAtod(v, &d) || d <= 0) return fallback;
  return d;
}

struct Config {
  double rate = EnvNumber("EVLOG_INCIDENT_RATE", 850);  // events/s per producer
  absl::Duration blackhole = absl::Seconds(EnvNumber("EVLOG_INCIDENT_BLACKHOLE_S", 30));
  int producers = static_cast<int>(EnvNumber("EVLOG_INCIDENT_PRODUCERS", 4));
  absl::Duration steady = absl::Seconds(EnvNumber("EVLOG_INCIDENT_STEADY_S", 3));
};

int PortOf(const std::string& address) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) << address;
  return port;
}

std::string ProducerKey(int i) { return absl::StrCat("producer-", i); }

// Parses a value `producer-<i> <seq>`; false if it is not one.
bool ParseEvent(const std::string& value, int* producer, int64_t* seq) {
  if (!absl::StartsWith(value, "producer-")) return false;
  const size_t space = value.find(' ');
  if (space == std::string::npos) return false;
  return absl::SimpleAtoi(value.substr(9, space - 9), producer) &&
         absl::SimpleAtoi(value.substr(space + 1), seq);
}

// Waits until `done()` or `deadline`, checking every `every`; returns done().
template <typename F>
bool WaitFor(F done, absl::Time deadline, absl::Duration every = absl::Milliseconds(20)) {
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(every);
  }
  return true;
}

double Secs(absl::Duration d) { return absl::ToDoubleSeconds(d); }

// ---- What the consumer group processed ----

// Which events the group's members were handed, by producer and sequence number.
// Thread safety: every method may be called from any thread.
class ProcessedEvents {
 public:
  explicit ProcessedEvents(int producers) : seen_(producers) {}

  void Add(const std::vector<ConsumedRecord>& records) {
    absl::MutexLock l(&mu_);
    for (const ConsumedRecord& r : records) {
      int p = 0;
      int64_t seq = 0;
      if (!ParseEvent(r.value, &p, &seq) || p < 0 || p >= static_cast<int>(seen_.size()) ||
          seq < 0) {
        ++malformed_;
        continue;
      }
      std::vector<bool>& s = seen_[p];
      if (static_cast<size_t>(seq) >= s.size()) s.resize(static_cast<size_t>(seq) * 2 + 1024);
      if (s[seq]) {
        ++redelivered_;
      } else {
        s[seq] = true;
        ++distinct_;
      }
    }
  }

  int64_t distinct() {
    absl::MutexLock l(&mu_);
    return distinct_;
  }
  int64_t redelivered() {
    absl::MutexLock l(&mu_);
    return redelivered_;
  }
  int64_t malformed() {
    absl::MutexLock l(&mu_);
    return malformed_;
  }
  // Sequence numbers of `producer` below `fed` never handed to the group (at most `max`).
  std::vector<int64_t> Missing(int producer, int64_t fed, size_t max) {
    absl::MutexLock l(&mu_);
    std::vector<int64_t> out;
    const std::vector<bool>& s = seen_[producer];
    for (int64_t q = 0; q < fed && out.size() < max; ++q) {
      if (static_cast<size_t>(q) >= s.size() || !s[q]) out.push_back(q);
    }
    return out;
  }
  int64_t CountFrom(int producer) {
    absl::MutexLock l(&mu_);
    return std::count(seen_[producer].begin(), seen_[producer].end(), true);
  }

 private:
  absl::Mutex mu_;
  std::vector<std::vector<bool>> seen_ ABSL_GUARDED_BY(mu_);
  int64_t distinct_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t redelivered_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t malformed_ ABSL_GUARDED_BY(mu_) = 0;
};

// One group member: a Consumer polled by its own thread until Stop().
class GroupMember {
 public:
  GroupMember(std::unique_ptr<Consumer> consumer, ProcessedEvents* processed)
      : consumer_(std::move(consumer)), thread_([this, processed] { Run(processed); }) {}
  ~GroupMember() { Stop().IgnoreError(); }  // errors were reported by the test's own Stop()

  // Stops polling and closes the consumer (commits what it was handed, leaves the group).
  // Returns the first error the member met (Poll or Close). Idempotent.
  absl::Status Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (consumer_ != nullptr) {
      absl::Status closed = consumer_->Close();
      if (error_.ok()) error_ = closed;
    }
    return error_;
  }

 private:
  void Run(ProcessedEvents* processed) {
    while (!stop_) {
      auto records = consumer_->Poll(2000, absl::Now() + absl::Milliseconds(100));
      if (!records.ok()) {
        error_ = records.status();  // read by Stop() after the join
        return;
      }
      processed->Add(*records);
    }
  }

  std::unique_ptr<Consumer> consumer_;
  std::atomic<bool> stop_{false};
  absl::Status error_;
  std::thread thread_;
};

// ---- Watching the log and the group ----

// Polls the topic's end offsets and the group's committed offsets (through the consumers'
// stable proxy, so across the server's restart) and records when targets are first reached.
// Thread safety: every method may be called from any thread; one polling thread of its own.
class LogWatch {
 public:
  explicit LogWatch(const std::string& address)
      : admin_(Admin::Create(address, {.timeout = absl::Seconds(2)})),
        groups_(GroupAdmin::Create(address, {.timeout = absl::Seconds(2)})),
        thread_([this] { Run(); }) {}
  ~LogWatch() {
    stop_ = true;
    thread_.join();
  }

  // The latest end offsets seen (empty before the first answer).
  std::vector<int64_t> Ends() {
    absl::MutexLock l(&mu_);
    return ends_;
  }
  int64_t EndSum() {
    absl::MutexLock l(&mu_);
    int64_t sum = 0;
    for (int64_t e : ends_) sum += e;
    return sum;
  }

  // Starts watching for the time when every partition's end offset reaches `target`, and for
  // the first time the log grows past `from` (the sum of end offsets).
  void SetDrainTarget(std::vector<int64_t> target, int64_t from) {
    absl::MutexLock l(&mu_);
    drain_target_ = std::move(target);
    drain_from_ = from;
  }
  // Starts watching for lag zero: every end offset equals `target` and every committed
  // offset equals the end offset.
  void SetFinalTarget(std::vector<int64_t> target) {
    absl::MutexLock l(&mu_);
    final_target_ = std::move(target);
  }

  std::optional<absl::Time> first_growth() {
    absl::MutexLock l(&mu_);
    return first_growth_;
  }
  // When the drain target was first seen reached, and the sum of end offsets then.
  std::optional<absl::Time> drained(int64_t* end_sum) {
    absl::MutexLock l(&mu_);
    if (end_sum != nullptr) *end_sum = drained_end_sum_;
    return drained_;
  }
  std::optional<absl::Time> lag_zero() {
    absl::MutexLock l(&mu_);
    return lag_zero_;
  }
  // The latest committed offsets (-1: none) and the error of the last failed poll.
  std::vector<int64_t> Committed() {
    absl::MutexLock l(&mu_);
    return committed_;
  }
  std::string last_error() {
    absl::MutexLock l(&mu_);
    return last_error_;
  }

 private:
  void Run() {
    while (!stop_) {
      Poll();
      absl::SleepFor(absl::Milliseconds(20));  // polling interval
    }
  }

  void Poll() {
    auto topic = admin_->DescribeTopic(kTopic);
    const absl::Time at = absl::Now();
    if (!topic.ok()) {
      absl::MutexLock l(&mu_);
      last_error_ = topic.status().ToString();
      return;
    }
    std::vector<int64_t> ends;
    for (const auto& p : topic->partitions) ends.push_back(p.end_offset);
    int64_t sum = 0;
    for (int64_t e : ends) sum += e;
    bool want_group;
    {
      absl::MutexLock l(&mu_);
      ends_ = ends;
      if (drain_target_.has_value()) {
        if (!first_growth_.has_value() && sum > drain_from_) first_growth_ = at;
        bool reached = !drained_.has_value();
        for (size_t p = 0; reached && p < ends.size(); ++p)
          reached = ends[p] >= (*drain_target_)[p];
        if (reached) {
          drained_ = at;
          drained_end_sum_ = sum;
        }
      }
      want_group = final_target_.has_value() && !lag_zero_.has_value();
    }
    if (!want_group) return;
    auto group = groups_->DescribeGroup(kGroup);
    if (!group.ok()) {
      absl::MutexLock l(&mu_);
      last_error_ = group.status().ToString();
      return;
    }
    std::vector<int64_t> committed(ends.size(), -1);
    for (const auto& p : group->partitions) {
      if (p.tp.topic == kTopic && p.tp.partition >= 0 &&
          static_cast<size_t>(p.tp.partition) < committed.size()) {
        committed[p.tp.partition] = p.committed_offset;
      }
    }
    absl::MutexLock l(&mu_);
    committed_ = committed;
    bool zero = true;
    for (size_t p = 0; zero && p < ends.size(); ++p) {
      zero = ends[p] == (*final_target_)[p] && committed[p] == ends[p];
    }
    // The group's answer came after the topic's: lag zero holds at least from `at` on.
    if (zero) lag_zero_ = at;
  }

  std::unique_ptr<Admin> admin_;
  std::unique_ptr<GroupAdmin> groups_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  std::vector<int64_t> ends_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> committed_ ABSL_GUARDED_BY(mu_);
  std::optional<std::vector<int64_t>> drain_target_ ABSL_GUARDED_BY(mu_);
  int64_t drain_from_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<std::vector<int64_t>> final_target_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> first_growth_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Time> drained_ ABSL_GUARDED_BY(mu_);
  int64_t drained_end_sum_ ABSL_GUARDED_BY(mu_) = 0;
  std::optional<absl::Time> lag_zero_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;  // last: starts after every member is initialised
};

// ---- The producers ----

// One `evlog produce --spool-dir` process and the thread feeding its stdin at a steady rate.
class ProducerProcess {
 public:
  ProducerProcess(int index, std::string spool_dir)
      : index_(index), spool_dir_(std::move(spool_dir)) {}
  ~ProducerProcess() {
    // A feeder blocked on a full pipe returns once the child is gone.
    stop_ = true;
    if (child_ != nullptr) child_->Signal(SIGKILL);
    if (feeder_.joinable()) feeder_.join();
  }

  // Starts the producer process, talking to `server`. Must be called from the test's main
  // thread (the child dies with the thread that started it).
  absl::Status Start(const std::string& server) {
    auto child = ChildProcess::StartWithStdin(
        {EVLOG_CLI_PATH, "--server=" + server, "produce", kTopic, "--key=" + ProducerKey(index_),
         "--spool-dir=" + spool_dir_, "--drain-timeout=600s"});
    if (!child.ok()) return child.status();
    child_ = *std::move(child);
    return absl::OkStatus();
  }

  // Feeds lines `producer-<i> <seq>` at `rate` per second from a thread until StopFeeding.
  void StartFeeding(double rate) {
    feeder_ = std::thread([this, rate] {
      const absl::Time start = absl::Now();
      int64_t next = 0;
      std::string chunk;
      while (!stop_) {
        {
          absl::MutexLock l(&feed_mu_);
          const int64_t due = static_cast<int64_t>(rate * Secs(absl::Now() - start));
          // After a pause the lines due meanwhile follow at once: the rate holds on average.
          if (!paused_ && due > next) {
            chunk.clear();
            for (int64_t s = next; s < due; ++s) {
              absl::StrAppend(&chunk, "producer-", index_, " ", s, "\n");
            }
            if (!child_->WriteStdin(chunk)) {
              broken_ = true;  // the producer closed its stdin or died: the checks report it
              return;
            }
            next = due;
            fed_ = next;
          }
        }
        absl::SleepFor(absl::Milliseconds(5));  // pacing of the steady stream
      }
    });
  }

  // Holds the feeder between two writes (fed() then stays put) until Resume.
  void Pause() {
    absl::MutexLock l(&feed_mu_);
    paused_ = true;
  }
  void Resume() {
    absl::MutexLock l(&feed_mu_);
    paused_ = false;
  }

  // Stops the feeder, then closes the producer's stdin (it drains and exits).
  void StopFeeding() {
    stop_ = true;
    if (feeder_.joinable()) feeder_.join();
    child_->CloseStdin();
  }

  int index() const { return index_; }
  const std::string& spool_dir() const { return spool_dir_; }
  int64_t fed() const { return fed_; }
  bool broken() const { return broken_; }
  ChildProcess& child() { return *child_; }

 private:
  const int index_;
  const std::string spool_dir_;
  std::unique_ptr<ChildProcess> child_;
  std::thread feeder_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> fed_{0};  // lines written completely to the producer's stdin
  std::atomic<bool> broken_{false};
  absl::Mutex feed_mu_;  // held by the feeder while it writes
  bool paused_ ABSL_GUARDED_BY(feed_mu_) = false;
};

// `evlog spool status DIR --json`: the pending records, or -1 (with a test failure) on error.
int64_t SpoolPending(const std::string& dir, int64_t* dead_letters = nullptr) {
  auto result = testing::RunCommand({EVLOG_CLI_PATH, "spool", "status", dir, "--json"}, "",
                                    absl::Seconds(30));
  if (!result.ok() || result->exit_code != 0) {
    ADD_FAILURE() << "evlog spool status " << dir << ": "
                  << (result.ok() ? result->err : result.status().ToString());
    return -1;
  }
  const auto j = nlohmann::json::parse(result->out, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("pending_records")) {
    ADD_FAILURE() << "evlog spool status " << dir << " --json printed: " << result->out;
    return -1;
  }
  if (dead_letters != nullptr) *dead_letters = j.value("dead_letter_records", int64_t{-1});
  return j["pending_records"].get<int64_t>();
}

TEST(IncidentTest, CutOffProducersKeepGoingAndEverythingIsProcessedExactlyOnce) {
  const Config cfg;
  ASSERT_GE(cfg.producers, 1);
  std::printf("incident: %d producers at %.0f events/s each, %.0f s blackhole, %.0f s steady\n",
              cfg.producers, cfg.rate, Secs(cfg.blackhole), Secs(cfg.steady));

  // Which partition each producer's key goes to (the CLI routes by the same hash).
  std::vector<int32_t> partition_of(cfg.producers);
  for (int i = 0; i < cfg.producers; ++i) {
    partition_of[i] = v1::PartitionForKey(ProducerKey(i), kPartitions);
  }
  // The expected end offset of each partition once producers fed `fed[i]` lines each.
  auto ExpectedEnds = [&](const std::vector<int64_t>& fed) {
    std::vector<int64_t> ends(kPartitions, 0);
    for (int i = 0; i < cfg.producers; ++i) ends[partition_of[i]] += fed[i];
    return ends;
  };

  // Declared in the order of construction; destroyed in reverse: producers (killed) and their
  // feeders, the consumers, the watcher, the proxies, the server, the directories.
  TempDir root("evlog-incident");
  auto started = ServerProcess::Start();
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<ServerProcess> server = *std::move(started);
  auto producer_proxy_or = FaultProxy::Start("127.0.0.1", PortOf(server->address()));
  ASSERT_TRUE(producer_proxy_or.ok()) << producer_proxy_or.status();
  std::unique_ptr<FaultProxy> producer_proxy = *std::move(producer_proxy_or);
  auto consumer_proxy_or = FaultProxy::Start("127.0.0.1", PortOf(server->address()));
  ASSERT_TRUE(consumer_proxy_or.ok()) << consumer_proxy_or.status();
  std::unique_ptr<FaultProxy> consumer_proxy = *std::move(consumer_proxy_or);
  const std::string stable = consumer_proxy->address();  // the server, across its restart

  {
    auto admin = Admin::Create(stable);
    auto topic = admin->CreateTopic(kTopic, {.partitions = kPartitions});
    ASSERT_TRUE(topic.ok()) << topic.status();
  }
  LogWatch watch(stable);

  ProcessedEvents processed(cfg.producers);
  std::vector<std::unique_ptr<GroupMember>> members;
  for (int m = 0; m < kConsumers; ++m) {
    client::ConsumerOptions options;
    options.group = kGroup;
    options.topics = {kTopic};
    options.client_id = absl::StrCat("incident-member-", m);
    options.session_timeout = absl::Seconds(6);
    options.call_timeout = absl::Seconds(5);
    options.reader.idle_timeout = absl::Seconds(10);
    options.reader.heartbeat = absl::Seconds(1);
    auto consumer = Consumer::Create(stable, options);
    ASSERT_TRUE(consumer.ok()) << consumer.status();
    members.push_back(std::make_unique<GroupMember>(*std::move(consumer), &processed));
  }

  std::vector<std::unique_ptr<ProducerProcess>> producers;
  for (int i = 0; i < cfg.producers; ++i) {
    producers.push_back(
        std::make_unique<ProducerProcess>(i, absl::StrCat(root.path(), "/spool-producer-", i)));
    ASSERT_TRUE(producers.back()->Start(producer_proxy->address()).ok());
  }
  auto FedNow = [&] {
    std::vector<int64_t> fed;
    for (auto& p : producers) fed.push_back(p->fed());
    return fed;
  };
  auto Sum = [](const std::vector<int64_t>& v) {
    int64_t s = 0;
    for (int64_t x : v) s += x;
    return s;
  };
  auto SpoolSum = [&] {
    int64_t sum = 0;
    for (auto& p : producers) sum += std::max<int64_t>(0, SpoolPending(p->spool_dir()));
    return sum;
  };

  // ---- 1. Steady traffic, processed by the group. ----
  const absl::Time t_start = absl::Now();
  for (auto& p : producers) p->StartFeeding(cfg.rate);
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < cfg.producers; ++i) {
          if (processed.CountFrom(i) == 0) return false;
        }
        return absl::Now() - t_start >= cfg.steady;
      },
      t_start + cfg.steady + absl::Seconds(60)))
      << "the consumer group did not process events from every producer in steady state";
  std::printf("incident: steady: %lld events fed, %lld processed by the group\n",
              static_cast<long long>(Sum(FedNow())), static_cast<long long>(processed.distinct()));

  // ---- 2. The producers are cut off; feeding goes on. ----
  ASSERT_TRUE(producer_proxy->SetMode(FaultProxy::Mode::kBlackhole).ok());
  const absl::Time t_cut = absl::Now();
  const std::vector<int64_t> ends_at_cut = watch.Ends();
  for (absl::Time report = t_cut + absl::Seconds(10); absl::Now() - t_cut < cfg.blackhole;) {
    absl::SleepFor(std::min(absl::Milliseconds(200), cfg.blackhole - (absl::Now() - t_cut)));
    for (auto& p : producers) {
      ASSERT_FALSE(p->broken()) << "producer " << p->index()
                                << " stopped reading stdin: " << p->child().Stderr();
      ASSERT_EQ(p->child().Wait(absl::Now()), -1)
          << "producer " << p->index() << " exited while cut off: " << p->child().Stderr();
    }
    if (absl::Now() >= report) {
      std::printf("incident: cut off for %.0f s: %lld events fed, %lld spooled\n",
                  Secs(absl::Now() - t_cut), static_cast<long long>(Sum(FedNow())),
                  static_cast<long long>(SpoolSum()));
      report += absl::Seconds(10);
    }
  }

  // Still cut off: every line a producer took is durable, in its spool or (sent before the
  // cut) in the log. Feeding pauses for this check only, so the count of lines fed holds
  // still while the spools catch up (the producers spool within their linger of 5 ms).
  for (auto& p : producers) p->Pause();
  const std::vector<int64_t> fed_at_reconnect = FedNow();
  std::vector<int64_t> pending(cfg.producers, 0);
  std::vector<int64_t> ends_then;
  const bool durable = WaitFor(
      [&] {
        ends_then = watch.Ends();
        if (ends_then.size() != static_cast<size_t>(kPartitions)) return false;
        std::vector<int64_t> held = ends_then;  // per partition: in the log or spooled
        for (auto& p : producers) {
          pending[p->index()] = SpoolPending(p->spool_dir());
          held[partition_of[p->index()]] += pending[p->index()];
        }
        const std::vector<int64_t> want = ExpectedEnds(fed_at_reconnect);
        for (int32_t q = 0; q < kPartitions; ++q) {
          if (held[q] < want[q]) return false;
        }
        return true;
      },
      absl::Now() + absl::Seconds(30), absl::Milliseconds(200));
  EXPECT_TRUE(durable) << "30 s after feeding paused, lines fed to the cut-off producers are "
                          "neither in their spools nor in the log: fed per producer "
                       << absl::StrJoin(fed_at_reconnect, ",") << ", spooled "
                       << absl::StrJoin(pending, ",") << ", log end offsets per partition "
                       << absl::StrJoin(ends_then, ",") << " (producer i writes partition "
                       << absl::StrJoin(partition_of, ",") << ")";
  const int64_t spooled_at_reconnect = Sum(pending);
  for (auto& p : producers) p->Resume();

  // ---- 3. The path returns; the server is killed mid-drain and restarted. ----
  const int64_t log_at_reconnect = watch.EndSum();
  const int64_t backlog = Sum(fed_at_reconnect) - log_at_reconnect;  // fed, not yet in the log
  watch.SetDrainTarget(ExpectedEnds(fed_at_reconnect), log_at_reconnect);
  ASSERT_TRUE(producer_proxy->SetMode(FaultProxy::Mode::kPass).ok());
  const absl::Time t_reconnect = absl::Now();
  std::printf(
      "incident: reconnect after %.1f s cut off: %lld events fed, %lld in the log (%lld during "
      "the cut), %lld spooled, %lld fed and not in the log\n",
      Secs(t_reconnect - t_cut), static_cast<long long>(Sum(fed_at_reconnect)),
      static_cast<long long>(log_at_reconnect),
      static_cast<long long>(log_at_reconnect - Sum(ends_at_cut)),
      static_cast<long long>(spooled_at_reconnect), static_cast<long long>(backlog));

  ASSERT_TRUE(WaitFor([&] { return watch.EndSum() - log_at_reconnect >= backlog / 4; },
                      t_reconnect + absl::Seconds(180)))
      << "a quarter of the backlog did not reach the log within 180 s of reconnecting; in the log: "
      << watch.EndSum() - log_at_reconnect << " of " << backlog
      << "; last watch error: " << watch.last_error();
  const int64_t drained_at_kill = watch.EndSum() - log_at_reconnect;
  server->Kill();
  const absl::Time t_killed = absl::Now();
  ASSERT_TRUE(server->Restart().ok()) << server->LogTail();
  producer_proxy->SetUpstreamPort(PortOf(server->address()));
  consumer_proxy->SetUpstreamPort(PortOf(server->address()));
  const absl::Time t_restarted = absl::Now();
  std::printf(
      "incident: evlogd SIGKILLed %.2f s after reconnect with %lld of %lld backlog events "
      "in the log; restarted in %.2f s\n",
      Secs(t_killed - t_reconnect), static_cast<long long>(drained_at_kill),
      static_cast<long long>(backlog), Secs(t_restarted - t_killed));
  // Killing after the drain finished would not test a restart mid-drain.
  EXPECT_LT(drained_at_kill, backlog) << "the backlog was drained before the kill";

  for (auto& p : producers) p->StopFeeding();
  const std::vector<int64_t> fed = FedNow();
  const int64_t total = Sum(fed);
  watch.SetFinalTarget(ExpectedEnds(fed));
  std::printf("incident: feeding stopped: %lld events fed in all\n", static_cast<long long>(total));

  // ---- 4. Every producer exits 0 with everything acknowledged and its spool empty. ----
  for (auto& p : producers) {
    ASSERT_FALSE(p->broken()) << "producer " << p->index()
                              << " stopped reading stdin: " << p->child().Stderr();
    const int exit = p->child().Wait(absl::Now() + absl::Seconds(300));
    const std::string err = p->child().Stderr();
    ASSERT_EQ(exit, 0) << "producer " << p->index() << " (-1: still running): " << err;
    const std::string want =
        absl::StrCat("produced ", fed[p->index()], " events: ", fed[p->index()], " acknowledged\n");
    EXPECT_TRUE(absl::EndsWith(err, want))
        << "producer " << p->index() << " fed " << fed[p->index()] << " lines; stderr: " << err;
    int64_t dead = -1;
    EXPECT_EQ(SpoolPending(p->spool_dir(), &dead), 0) << "producer " << p->index();
    EXPECT_EQ(dead, 0) << "producer " << p->index() << " has dead letters";
  }
  const absl::Time t_producers_done = absl::Now();

  ASSERT_TRUE(
      WaitFor([&] { return watch.lag_zero().has_value(); }, absl::Now() + absl::Seconds(180)))
      << "the group's lag did not reach zero; ends " << absl::StrJoin(watch.Ends(), ",")
      << ", committed " << absl::StrJoin(watch.Committed(), ",") << ", expected ends "
      << absl::StrJoin(ExpectedEnds(fed), ",") << "; last watch error: " << watch.last_error();
  const absl::Time t_lag_zero = *watch.lag_zero();
  int64_t log_at_drained = 0;
  const std::optional<absl::Time> t_drained = watch.drained(&log_at_drained);
  const std::optional<absl::Time> t_first = watch.first_growth();
  ASSERT_TRUE(t_drained.has_value());

  for (auto& m : members) {
    absl::Status s = m->Stop();
    EXPECT_TRUE(s.ok()) << "group member: " << s;
  }

  // ---- The log holds every event exactly once, in each producer's order. ----
  {
    auto reader = Reader::Create(server->address());
    std::vector<int64_t> next(cfg.producers, 0);  // the seq expected next, per producer
    int64_t duplicates = 0, gaps = 0, misplaced = 0, malformed = 0, read = 0;
    std::vector<std::string> problems;
    auto note = [&problems](std::string s) {
      if (problems.size() < 10) problems.push_back(std::move(s));
    };
    for (int32_t partition = 0; partition < kPartitions; ++partition) {
      auto stream = reader->Open(
          {.topic = kTopic, .partition = partition, .start = client::ReadSpec::kEarliest});
      std::vector<ConsumedRecord> chunk;
      while (stream->Next(&chunk)) {
        for (const ConsumedRecord& r : chunk) {
          ++read;
          int i = 0;
          int64_t seq = 0;
          if (!ParseEvent(r.value, &i, &seq) || i < 0 || i >= cfg.producers) {
            ++malformed;
            note(absl::StrCat("partition ", partition, " offset ", r.offset, ": value ", r.value));
            continue;
          }
          if (partition != partition_of[i] || r.key != ProducerKey(i)) {
            ++misplaced;
            note(absl::StrCat(r.value, " with key ", r.key, " in partition ", partition));
          }
          if (seq < next[i]) {
            ++duplicates;
            note(absl::StrCat(r.value, " at offset ", r.offset, " again (or out of order)"));
          } else {
            if (seq > next[i]) {
              gaps += seq - next[i];
              note(absl::StrCat("producer-", i, " seq ", next[i], "..", seq - 1,
                                " missing before offset ", r.offset));
            }
            next[i] = seq + 1;
          }
        }
      }
      absl::Status s = stream->Finish();
      EXPECT_TRUE(s.ok()) << "reading partition " << partition << ": " << s;
    }
    EXPECT_EQ(read, total);
    EXPECT_EQ(duplicates, 0);
    EXPECT_EQ(gaps, 0);
    EXPECT_EQ(misplaced, 0);
    EXPECT_EQ(malformed, 0);
    for (int i = 0; i < cfg.producers; ++i) {
      EXPECT_EQ(next[i], fed[i]) << "producer-" << i << ": the log ends before its last line";
    }
    EXPECT_TRUE(problems.empty()) << absl::StrJoin(problems, "\n");
  }

  // ---- The group processed every event, and committed up to the end. ----
  EXPECT_EQ(processed.distinct(), total);
  EXPECT_EQ(processed.malformed(), 0);
  for (int i = 0; i < cfg.producers; ++i) {
    const std::vector<int64_t> missing = processed.Missing(i, fed[i], 10);
    EXPECT_TRUE(missing.empty()) << "producer-" << i << " events never processed, e.g. seq "
                                 << absl::StrJoin(missing, ",");
  }
  {
    auto groups = GroupAdmin::Create(server->address());
    auto group = groups->DescribeGroup(kGroup);
    ASSERT_TRUE(group.ok()) << group.status();
    const std::vector<int64_t> ends = ExpectedEnds(fed);
    for (const auto& p : group->partitions) {
      if (p.tp.topic != kTopic) continue;
      EXPECT_EQ(p.committed_offset, ends[p.tp.partition]) << "partition " << p.tp.partition;
      EXPECT_EQ(p.end_offset, ends[p.tp.partition]) << "partition " << p.tp.partition;
      EXPECT_EQ(p.lag, 0) << "partition " << p.tp.partition;
    }
  }

  // ---- The figures. ----
  const absl::Duration drain = *t_drained - t_reconnect;
  const int64_t drained_events = log_at_drained - log_at_reconnect;
  std::printf(
      "incident summary:\n"
      "  producers                       %d at %.0f events/s each, cut off %.1f s\n"
      "  events fed (and acknowledged)   %lld\n"
      "  backlog spooled at reconnect    %lld (%lld fed and not in the log)\n"
      "  first event in the log after    %.2f s\n"
      "  evlogd SIGKILLed after          %.2f s, %lld backlog events in the log; restart %.2f s\n"
      "  drain time (reconnect to every  %.2f s\n"
      "    event fed before it in log)\n"
      "  events/s after reconnect        %.0f (%lld events into the log in the drain time,\n"
      "                                  the restart included; %.0f/s without the restart)\n"
      "  producers exited after          %.2f s\n"
      "  reconnect to lag zero           %.2f s\n"
      "  group redeliveries              %lld (at least once: handed out again after the "
      "restart)\n",
      cfg.producers, cfg.rate, Secs(t_reconnect - t_cut), static_cast<long long>(total),
      static_cast<long long>(spooled_at_reconnect), static_cast<long long>(backlog),
      t_first.has_value() ? Secs(*t_first - t_reconnect) : -1.0, Secs(t_killed - t_reconnect),
      static_cast<long long>(drained_at_kill), Secs(t_restarted - t_killed), Secs(drain),
      drained_events / std::max(Secs(drain), 1e-3), static_cast<long long>(drained_events),
      drained_events / std::max(Secs(drain - (t_restarted - t_killed)), 1e-3),
      Secs(t_producers_done - t_reconnect), Secs(t_lag_zero - t_reconnect),
      static_cast<long long>(processed.redelivered()));
  std::fflush(stdout);
}

}  // namespace
}  // namespace evlog
