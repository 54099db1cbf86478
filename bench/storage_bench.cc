// storage_bench: measures LogStore append throughput (records/s, MB/s, fsyncs/s) with N
// concurrent appenders under a fsync policy, then sequential read throughput of what it wrote.
//
//   build/bin/storage_bench --dir=/tmp/b --appenders=8 --record_bytes=100 --records_per_batch=1
//
// Each appender calls LogStore::Append in a loop (one batch per call) for --seconds. The data
// directory is removed at the end unless --keep.
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "storage/log_store.h"

ABSL_FLAG(std::string, dir, "/tmp/evlog_storage_bench", "data directory (removed first)");
ABSL_FLAG(int, appenders, 8, "concurrent appending threads");
ABSL_FLAG(int, record_bytes, 100, "value size of each record");
ABSL_FLAG(int, records_per_batch, 1, "records per Append call");
ABSL_FLAG(int, partitions, 8, "partitions of the topic (appender i writes to i % partitions)");
ABSL_FLAG(double, seconds, 5, "how long to append");
ABSL_FLAG(std::string, fsync, "always", "always | interval:MS");
ABSL_FLAG(bool, read, true, "measure sequential read throughput afterwards");
ABSL_FLAG(bool, keep, false, "keep the data directory");

namespace es = evlog::storage;

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_dir);
  std::filesystem::remove_all(dir);
  es::Options options;
  const std::string fsync = absl::GetFlag(FLAGS_fsync);
  if (fsync.rfind("interval:", 0) == 0) {
    options.fsync_policy = es::FsyncPolicy::kInterval;
    options.fsync_interval = absl::Milliseconds(std::stoi(fsync.substr(9)));
  }
  options.retention_check_interval = absl::ZeroDuration();
  auto store = es::LogStore::Open(dir, options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  const int partitions = absl::GetFlag(FLAGS_partitions);
  if (auto s = (*store)->CreateTopic("bench", {.partitions = partitions}); !s.ok()) {
    std::fprintf(stderr, "create: %s\n", s.ToString().c_str());
    return 1;
  }

  const int appenders = absl::GetFlag(FLAGS_appenders);
  const int per_batch = absl::GetFlag(FLAGS_records_per_batch);
  const int record_bytes = absl::GetFlag(FLAGS_record_bytes);
  const absl::Duration duration = absl::Seconds(absl::GetFlag(FLAGS_seconds));
  std::atomic<bool> failed{false};
  std::vector<std::thread> threads;
  const es::StoreStats before = (*store)->Stats();
  const absl::Time start = absl::Now();
  for (int t = 0; t < appenders; ++t) {
    threads.emplace_back([&, t] {
      std::vector<es::Record> batch(per_batch);
      for (auto& r : batch) r.value.assign(record_bytes, 'a' + t % 26);
      while (absl::Now() - start < duration && !failed) {
        auto r = (*store)->Append("bench", t % partitions, batch);
        if (!r.ok()) {
          std::fprintf(stderr, "append: %s\n", r.status().ToString().c_str());
          failed = true;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  const es::StoreStats after = (*store)->Stats();
  const double records = after.records - before.records;
  const double payload_mb = records * record_bytes / 1e6;
  std::printf(
      "append appenders=%d record_bytes=%d records_per_batch=%d fsync=%s: %.0f records/s "
      "%.1f MB/s (payload) %.0f appends/s %.0f fsyncs/s %.1f appends/fsync\n",
      appenders, record_bytes, per_batch, fsync.c_str(), records / secs, payload_mb / secs,
      (after.appends - before.appends) / secs, (after.fsyncs - before.fsyncs) / secs,
      double(after.appends - before.appends) / std::max<double>(1, after.fsyncs - before.fsyncs));

  if (absl::GetFlag(FLAGS_read) && !failed) {
    const absl::Time rstart = absl::Now();
    int64_t read_records = 0;
    for (int p = 0; p < partitions; ++p) {
      int64_t offset = 0;
      for (;;) {
        auto r = (*store)->Read("bench", p, offset, {.max_bytes = 1 << 20, .max_records = 100000});
        if (!r.ok()) {
          std::fprintf(stderr, "read: %s\n", r.status().ToString().c_str());
          return 1;
        }
        if (r->records.empty()) break;
        read_records += r->records.size();
        offset = r->next_offset;
      }
    }
    const double rsecs = absl::ToDoubleSeconds(absl::Now() - rstart);
    std::printf("read: %.0f records/s %.1f MB/s (payload), %lld records\n",
                read_records / rsecs, read_records * double(record_bytes) / 1e6 / rsecs,
                static_cast<long long>(read_records));
  }
  store->reset();
  if (!absl::GetFlag(FLAGS_keep)) std::filesystem::remove_all(dir);
  return failed ? 1 : 0;
}
