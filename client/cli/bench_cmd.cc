#include "client/cli/bench_cmd.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/admin.h"
#include "client/channel.h"
#include "client/cli/bench_args.h"
#include "client/cli/bench_pacer.h"
#include "client/cli/bench_stats.h"
#include "client/cli/commands.h"
#include "client/consumer.h"
#include "client/producer.h"

namespace evlog::cli {
namespace {

// The first error seen by any thread, kept for the report.
class FirstError {
 public:
  void Set(const absl::Status& status) {
    absl::MutexLock lock(&mu_);
    if (status_.ok()) status_ = status;
  }
  absl::Status Get() {
    absl::MutexLock lock(&mu_);
    return status_;
  }

 private:
  absl::Mutex mu_;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

// Makes sure the topic exists, creating it with `partitions` partitions if it does not.
// Returns its partition count.
absl::StatusOr<int32_t> EnsureTopic(client::Admin& admin, const std::string& topic,
                                    int32_t partitions) {
  absl::StatusOr<client::TopicDescription> created =
      admin.CreateTopic(topic, {.partitions = partitions});
  if (created.ok()) return created->partition_count;
  if (!absl::IsAlreadyExists(created.status())) return created.status();
  absl::StatusOr<client::TopicDescription> existing = admin.DescribeTopic(topic);
  if (!existing.ok()) return existing.status();
  return existing->partition_count;
}

// A value of `size` random letters and digits, different per producer so that compression
// anywhere on the path could not flatter the figures.
std::string Payload(int32_t size, uint32_t seed) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::mt19937 rng(seed);
  std::string value(static_cast<size_t>(size), 'x');
  for (char& c : value) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return value;
}

void StoreMax(std::atomic<int64_t>& target, int64_t value) {
  int64_t seen = target.load(std::memory_order_relaxed);
  while (seen < value && !target.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {
  }
}

// User + system CPU time of this process so far, in seconds (0 if getrusage fails).
double ProcessCpuSeconds() {
  struct rusage usage;
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto secs = [](const struct timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return secs(usage.ru_utime) + secs(usage.ru_stime);
}

// What the producer threads of a produce or e2e run share.
struct ProduceShared {
  LatencyHistogram ack_latency;
  std::atomic<int64_t> sent{0};
  std::atomic<int64_t> acked{0};
  std::atomic<int64_t> failed{0};
  std::atomic<int64_t> last_ack_ns{0};
  std::atomic<int64_t> batches{0};
  // With --rate: how late each Send was against its due time (bench_pacer.h).
  LatencyHistogram schedule_lag;
  FirstError first_error;
};

// The shortest time between two wake-ups of a rate-limited producer (bench_pacer.h): short
// against the disk's fsync latency (~1 ms p99) that the latency runs compare with, long enough
// that sleeping costs the 2-core machine little (16 producers: 16,000 wake-ups/s at most).
constexpr int64_t kPacingTickNs = 1000000;

struct ProduceRun {
  int64_t start_ns = 0;
  double cpu_seconds = 0;  // this process's CPU time from the clock's start to the last outcome
  int32_t partitions = 0;
};

// Runs args.producers producer threads until every one sent its share of `events` (or the
// duration passed) and its events have their outcomes. With `stamp`, the first 8 bytes of each
// value are the send time (ns since the epoch, little-endian) for the e2e consumer.
ProduceRun RunProducers(const Invocation& inv, const BenchArgs& args, int32_t partitions,
                        int64_t events, bool stamp, ProduceShared& shared, Progress* progress) {
  const int32_t n = args.producers;
  client::ProducerOptions options;
  if (args.batch_bytes.has_value()) options.batch_max_bytes = *args.batch_bytes;
  if (args.linger_ms.has_value()) options.linger = absl::Milliseconds(*args.linger_ms);
  if (args.in_flight.has_value()) options.max_in_flight = *args.in_flight;
  if (args.buffer_bytes.has_value()) options.max_buffered_bytes = *args.buffer_bytes;
  options.call_timeout = inv.timeout;
  options.ack_timeout = inv.timeout;

  std::vector<std::unique_ptr<client::Producer>> producers;
  for (int32_t i = 0; i < n; ++i) {
    producers.push_back(client::Producer::Create(client::CreateEvlogChannel(inv.server), options));
  }
  const double rate_per_producer = args.rate > 0 ? args.rate / n : 0;

  absl::Mutex mu;
  int ready = 0;
  bool go = false;
  ProduceRun run;
  run.partitions = partitions;
  std::vector<std::thread> threads;
  for (int32_t t = 0; t < n; ++t) {
    threads.emplace_back([&, t] {
      client::Producer& producer = *producers[t];
      const int32_t partition = t % partitions;
      const int64_t share = events / n + (t < events % n ? 1 : 0);
      const std::string payload = Payload(args.size, static_cast<uint32_t>(t) * 7919 + 17);
      // Warm-up, before the clock starts: the producer's first event, sent alone and waited
      // for, opens the connection and the stream, gets the server's limits and a producer id,
      // and lets the partition's in-flight window grow past 1 (producer.h). Without it the
      // events due during that start-up waited for it: at --rate=5k, 16 producers, the p99 was
      // 39-46 ms and the max 79-117 ms against 18-23 ms and 27-36 ms with it (loaded machine).
      // The event counts in `events`, not in the latencies or the seconds.
      const int64_t warmed = share > 0 ? 1 : 0;
      bool warm_ok = true;
      if (warmed > 0) {
        client::ProducerRecord record;
        record.value = payload;
        if (stamp) std::memset(record.value.data(), 0, sizeof(int64_t));  // e2e: not timed
        absl::Status s = producer.Send(args.topic, std::move(record), partition,
                                       [&shared](absl::StatusOr<client::RecordMetadata> outcome) {
                                         if (outcome.ok()) {
                                           shared.acked.fetch_add(1, std::memory_order_relaxed);
                                         } else {
                                           shared.failed.fetch_add(1, std::memory_order_relaxed);
                                           shared.first_error.Set(outcome.status());
                                         }
                                       });
        if (s.ok()) s = producer.Flush(absl::Now() + inv.timeout);
        if (s.ok()) {
          shared.sent.fetch_add(1, std::memory_order_relaxed);
          if (progress != nullptr) progress->Add(1);
        } else {
          shared.first_error.Set(s);
          warm_ok = false;
        }
      }
      {
        absl::MutexLock lock(&mu);
        ++ready;
        mu.Await(absl::Condition(&go));
      }
      const int64_t deadline_ns =
          args.duration_ms.has_value() ? run.start_ns + *args.duration_ms * 1000000 : INT64_MAX;
      std::optional<SendPacer> pacer;
      if (rate_per_producer > 0) {
        pacer.emplace(SendPacer::FirstDue(run.start_ns, t, n, rate_per_producer, kPacingTickNs),
                      rate_per_producer, kPacingTickNs);
      }
      for (int64_t i = warmed; warm_ok && i < share; ++i) {
        int64_t now = absl::GetCurrentTimeNanos();
        if (pacer.has_value()) {
          // Sleeps at most once per tick; the events due by then go out together (bench_pacer.h).
          const int64_t k = i - warmed;  // the timed events' schedule starts at the clock
          if (const int64_t sleep_ns = pacer->SleepBefore(k, now); sleep_ns > 0) {
            if (now + sleep_ns >= deadline_ns) break;
            absl::SleepFor(absl::Nanoseconds(sleep_ns));
            now = absl::GetCurrentTimeNanos();
            pacer->Woke(now);
          }
          shared.schedule_lag.Record(now - pacer->Due(k));
        }
        if (now >= deadline_ns) break;
        client::ProducerRecord record;
        record.value = payload;
        if (stamp) std::memcpy(record.value.data(), &now, sizeof(now));
        absl::Status s =
            producer.Send(args.topic, std::move(record), partition,
                          [&shared, now, progress](absl::StatusOr<client::RecordMetadata> outcome) {
                            const int64_t done = absl::GetCurrentTimeNanos();
                            if (outcome.ok()) {
                              shared.ack_latency.Record(done - now);
                              shared.acked.fetch_add(1, std::memory_order_relaxed);
                              StoreMax(shared.last_ack_ns, done);
                              if (progress != nullptr) progress->Add(1);
                            } else {
                              shared.failed.fetch_add(1, std::memory_order_relaxed);
                              shared.first_error.Set(outcome.status());
                            }
                          });
        if (!s.ok()) {
          shared.first_error.Set(s);
          break;
        }
        shared.sent.fetch_add(1, std::memory_order_relaxed);
      }
      // Every event sent gets its outcome (each has a delivery deadline), so this ends.
      if (absl::Status s = producer.Close(absl::InfiniteFuture()); !s.ok()) {
        shared.first_error.Set(s);
      }
      shared.batches.fetch_add(producer.Stats().batches_sent, std::memory_order_relaxed);
    });
  }
  {
    absl::MutexLock lock(&mu);
    auto all_ready = [&ready, n] { return ready == n; };
    mu.Await(absl::Condition(&all_ready));
    run.start_ns = absl::GetCurrentTimeNanos();
    run.cpu_seconds = -ProcessCpuSeconds();
    go = true;
  }
  for (auto& th : threads) th.join();
  run.cpu_seconds += ProcessCpuSeconds();
  producers.clear();
  return run;
}

BenchResult BaseResult(const BenchArgs& args, absl::string_view mode) {
  BenchResult r;
  r.mode = std::string(mode);
  r.topic = args.topic;
  r.producers = args.producers;
  r.size = args.size;
  r.rate = args.rate;
  return r;
}

int Report(const BenchArgs& args, const BenchResult& result, const absl::Status& first_error) {
  if (args.json) {
    std::cout << FormatBenchJson(result) << std::endl;
  } else {
    std::cout << FormatBenchSummary(result);
    std::cout.flush();
  }
  if (!first_error.ok()) PrintError(first_error);
  return result.errors == 0 && first_error.ok() ? kExitOk : kExitFailure;
}

int Fail(const absl::Status& status) {
  PrintError(status);
  return kExitFailure;
}

int RunProduce(const Invocation& inv, const BenchArgs& args) {
  auto admin = client::Admin::Create(inv.server, {.timeout = inv.timeout});
  absl::StatusOr<int32_t> partitions =
      EnsureTopic(*admin, args.topic, args.partitions > 0 ? args.partitions : args.producers);
  if (!partitions.ok()) return Fail(partitions.status());
  const int64_t events = args.events.value_or(1000000);

  ProduceShared shared;
  ProduceRun run;
  {
    Progress progress("produce", events);
    run = RunProducers(inv, args, *partitions, events, /*stamp=*/false, shared, &progress);
  }
  BenchResult r = BaseResult(args, "produce");
  r.latency = "ack_per_event";
  r.partitions = run.partitions;
  r.events = shared.acked.load();
  r.bytes = r.events * args.size;
  r.errors = shared.failed.load();
  r.batches = shared.batches.load();
  const int64_t end_ns = std::max(shared.last_ack_ns.load(), run.start_ns);
  r.seconds = static_cast<double>(end_ns - run.start_ns) / 1e9;
  r.cpu_seconds = run.cpu_seconds;
  SetLatencies(shared.ack_latency, r);
  SetScheduleLag(shared.schedule_lag, r);
  absl::Status error = shared.first_error.Get();
  if (!error.ok()) r.error = error.ToString();
  return Report(args, r, error);
}

int RunEndToEnd(const Invocation& inv, BenchArgs args) {
  auto admin = client::Admin::Create(inv.server, {.timeout = inv.timeout});
  absl::StatusOr<int32_t> partitions =
      EnsureTopic(*admin, args.topic, args.partitions > 0 ? args.partitions : args.producers);
  if (!partitions.ok()) return Fail(partitions.status());
  if (args.group.empty()) args.group = absl::StrCat("evlog-bench-e2e-", ::getpid());
  if (!args.linger_ms.has_value()) args.linger_ms = 0;
  const int64_t events = args.events.value_or(100000);

  // Join first, from the end of the topic, and wait for every partition to be assigned, so
  // the first event sent is already being waited for.
  client::ConsumerOptions options;
  options.group = args.group;
  options.topics = {args.topic};
  options.auto_offset_reset = client::OffsetReset::kLatest;
  options.auto_commit_interval = absl::Seconds(1);
  options.call_timeout = inv.timeout;
  options.give_up_after = inv.timeout;
  auto consumer = client::Consumer::Create(client::CreateEvlogChannel(inv.server), options);
  if (!consumer.ok()) return Fail(consumer.status());
  const absl::Time assigned_by = absl::Now() + inv.timeout;
  while (static_cast<int32_t>((*consumer)->Assignment().size()) < *partitions) {
    if (absl::Now() > assigned_by) {
      return Fail(absl::DeadlineExceededError(
          absl::StrCat("group ", args.group, " did not assign all ", *partitions, " partitions of ",
                       args.topic, " to the bench within ", absl::FormatDuration(inv.timeout),
                       "; is another member of the group running?")));
    }
    absl::SleepFor(absl::Milliseconds(10));  // polling the assignment, not timing
  }

  LatencyHistogram e2e_latency;
  std::atomic<int64_t> received{0};
  std::atomic<int64_t> received_bytes{0};
  std::atomic<int64_t> last_receive_ns{0};
  std::atomic<bool> producers_done{false};
  ProduceShared shared;
  absl::Status consume_error;
  Progress progress("e2e", events);
  std::thread reader([&] {
    absl::Time idle_since = absl::InfiniteFuture();
    while (true) {
      const int64_t expected = shared.acked.load();
      if (producers_done.load() && received.load() >= expected) break;
      if (producers_done.load() && idle_since == absl::InfiniteFuture()) idle_since = absl::Now();
      if (absl::Now() - idle_since > inv.timeout) break;  // the rest never came
      auto records = (*consumer)->Poll(10000, absl::Now() + absl::Milliseconds(100));
      if (!records.ok()) {
        consume_error = records.status();
        break;
      }
      const int64_t now = absl::GetCurrentTimeNanos();
      for (const client::ConsumedRecord& rec : *records) {
        int64_t sent_ns = now;
        if (rec.value.size() >= sizeof(sent_ns)) {
          std::memcpy(&sent_ns, rec.value.data(), sizeof(sent_ns));
        }
        if (sent_ns > 0) e2e_latency.Record(now - sent_ns);  // 0: a warm-up event, not timed
        received_bytes.fetch_add(static_cast<int64_t>(rec.value.size()), std::memory_order_relaxed);
      }
      if (!records->empty()) {
        received.fetch_add(static_cast<int64_t>(records->size()));
        last_receive_ns.store(now);
        progress.Add(static_cast<int64_t>(records->size()));
        idle_since = producers_done.load() ? absl::Now() : absl::InfiniteFuture();
      }
    }
  });
  const ProduceRun run =
      RunProducers(inv, args, *partitions, events, /*stamp=*/true, shared, nullptr);
  producers_done.store(true);
  reader.join();
  absl::Status closed = (*consumer)->Close();

  BenchResult r = BaseResult(args, "e2e");
  r.latency = "end_to_end";
  r.partitions = run.partitions;
  r.events = received.load();
  r.bytes = received_bytes.load();
  r.batches = shared.batches.load();
  const int64_t missing = std::max<int64_t>(0, shared.acked.load() - r.events);
  r.errors = shared.failed.load() + missing;
  const int64_t end_ns = std::max(last_receive_ns.load(), run.start_ns);
  r.seconds = static_cast<double>(end_ns - run.start_ns) / 1e9;
  r.cpu_seconds = run.cpu_seconds;
  SetLatencies(e2e_latency, r);
  SetScheduleLag(shared.schedule_lag, r);
  absl::Status error = shared.first_error.Get();
  if (error.ok()) error = consume_error;
  if (error.ok() && missing > 0) {
    error = absl::DeadlineExceededError(
        absl::StrCat(missing, " acknowledged events were not received by the consumer within ",
                     absl::FormatDuration(inv.timeout), " (raise --timeout to wait longer)"));
  }
  if (error.ok() && !closed.ok()) error = closed;
  if (!error.ok()) r.error = error.ToString();
  return Report(args, r, error);
}

int RunConsume(const Invocation& inv, const BenchArgs& args) {
  auto admin = client::Admin::Create(inv.server, {.timeout = inv.timeout});
  absl::StatusOr<client::TopicDescription> topic = admin->DescribeTopic(args.topic);
  if (!topic.ok()) return Fail(topic.status());

  // The backlog: per assigned partition, its end offset now minus where the group starts.
  absl::Mutex mu;
  int64_t backlog = 0;
  client::ConsumerOptions options;
  options.group = args.group;
  options.topics = {args.topic};
  options.auto_commit_interval = absl::Seconds(1);
  options.call_timeout = inv.timeout;
  options.give_up_after = inv.timeout;
  options.on_assignment = [&](const client::AssignmentChange& change) {
    absl::MutexLock lock(&mu);
    for (const client::AssignedPartition& a : change.assigned) {
      if (a.tp.partition < static_cast<int32_t>(topic->partitions.size())) {
        backlog +=
            std::max<int64_t>(0, topic->partitions[a.tp.partition].end_offset - a.start_offset);
      }
    }
  };
  const int64_t start_ns = absl::GetCurrentTimeNanos();
  auto consumer = client::Consumer::Create(client::CreateEvlogChannel(inv.server), options);
  if (!consumer.ok()) return Fail(consumer.status());
  int64_t target = 0;
  {
    absl::MutexLock lock(&mu);
    target = args.events.value_or(backlog);
  }

  int64_t events = 0;
  int64_t bytes = 0;
  int64_t last_ns = start_ns;
  absl::Status error;
  {
    Progress progress("consume", target);
    absl::Time last_record = absl::Now();
    while (events < target) {
      auto records =
          (*consumer)->Poll(static_cast<size_t>(std::min<int64_t>(target - events, 10000)),
                            absl::Now() + absl::Milliseconds(100));
      if (!records.ok()) {
        error = records.status();
        break;
      }
      if (records->empty()) {
        if (absl::Now() - last_record > inv.timeout) {
          error = absl::DeadlineExceededError(
              absl::StrCat("no event arrived for ", absl::FormatDuration(inv.timeout), " after ",
                           events, " of ", target,
                           " (raise --timeout, or check the group's lag with `evlog group "
                           "describe ",
                           args.group, "`)"));
          break;
        }
        continue;
      }
      last_record = absl::Now();
      for (const client::ConsumedRecord& rec : *records) {
        bytes += static_cast<int64_t>(rec.value.size());
      }
      events += static_cast<int64_t>(records->size());
      progress.Add(static_cast<int64_t>(records->size()));
      last_ns = absl::GetCurrentTimeNanos();
    }
  }
  absl::Status closed = (*consumer)->Close();
  if (error.ok()) error = closed;

  BenchResult r;
  r.mode = "consume";
  r.topic = args.topic;
  r.latency = "none";
  r.events = events;
  r.bytes = bytes;
  r.partitions = static_cast<int32_t>(topic->partitions.size());
  r.seconds = static_cast<double>(last_ns - start_ns) / 1e9;
  r.errors = error.ok() ? 0 : std::max<int64_t>(1, target - events);
  if (!error.ok()) r.error = error.ToString();
  return Report(args, r, error);
}

}  // namespace

int RunBench(const Invocation& inv) {
  switch (inv.bench.mode) {
    case BenchMode::kProduce:
      return RunProduce(inv, inv.bench);
    case BenchMode::kConsume:
      return RunConsume(inv, inv.bench);
    case BenchMode::kEndToEnd:
      break;
  }
  return RunEndToEnd(inv, inv.bench);
}

}  // namespace evlog::cli
