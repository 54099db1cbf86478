// Micro-benchmarks of storage hot paths: batch encode/decode, CRC32C, and LogStore append and
// read through the whole storage stack (RocksDB included). Run with
// `cmake --build build --target micro`; the store benchmarks write under $TMPDIR (default /tmp),
// which should be on the disk of interest, and remove what they wrote.
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "benchmark/benchmark.h"
#include "storage/batch_codec.h"
#include "storage/crc32c.h"
#include "storage/log_store.h"

namespace es = evlog::storage;

static std::vector<es::Record> Records(int n, int size) {
  std::vector<es::Record> r(n);
  for (auto& rec : r) {
    rec.timestamp_ms = 1700000000000;
    rec.key = "key";
    rec.value.assign(size, 'v');
  }
  return r;
}

static void BM_EncodeBatch(benchmark::State& state) {
  auto records = Records(state.range(0), state.range(1));
  for (auto _ : state) benchmark::DoNotOptimize(es::EncodeBatch(records, {}, 0));
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * state.range(0) * state.range(1));
}
BENCHMARK(BM_EncodeBatch)->Args({1, 100})->Args({100, 100})->Args({64, 1024});

static void BM_VerifyAndDecodeBatch(benchmark::State& state) {
  const std::string batch = es::EncodeBatch(Records(state.range(0), state.range(1)), {}, 0);
  std::vector<es::Record> out;
  for (auto _ : state) {
    out.clear();
    benchmark::DoNotOptimize(es::VerifyBatch(batch));
    benchmark::DoNotOptimize(es::DecodeRecords(batch, 0, 0, 1 << 30, &out));
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * batch.size());
}
BENCHMARK(BM_VerifyAndDecodeBatch)->Args({1, 100})->Args({100, 100})->Args({64, 1024});

static void BM_Crc32c(benchmark::State& state) {
  const std::string data(state.range(0), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(es::Crc32c(data));
  state.SetBytesProcessed(state.iterations() * data.size());
}
BENCHMARK(BM_Crc32c)->Arg(100)->Arg(64 << 10);

// A LogStore in a fresh temporary directory, removed with it.
class TempStore {
 public:
  explicit TempStore(es::FsyncPolicy policy) {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/evlog-micro-XXXXXX";
    dir_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
    es::Options options;
    options.fsync_policy = policy;
    options.retention_check_interval = absl::ZeroDuration();
    auto store = es::LogStore::Open(dir_ + "/store", options);
    if (store.ok()) store_ = std::move(*store);
    if (store_ != nullptr && !store_->CreateTopic("bench", {.partitions = 1}).ok()) store_.reset();
  }
  ~TempStore() {
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  es::LogStore* get() { return store_.get(); }

 private:
  std::string dir_;
  std::unique_ptr<es::LogStore> store_;
};

// One Append of a batch of range(0) records of range(1) bytes, from one thread: the latency of
// the append path. range(2) = 1 fsyncs each append (the default durability: this is then
// mostly the disk's fdatasync); 0 acknowledges once written (--fsync=interval), which leaves
// the CPU cost of encoding, queueing and the RocksDB write.
static void BM_StoreAppend(benchmark::State& state) {
  TempStore store(state.range(2) == 1 ? es::FsyncPolicy::kAlways : es::FsyncPolicy::kInterval);
  if (store.get() == nullptr) return state.SkipWithError("cannot open a store under $TMPDIR");
  const std::vector<es::Record> records = Records(state.range(0), state.range(1));
  for (auto _ : state) {
    auto appended = store.get()->Append("bench", 0, records);
    if (!appended.ok()) return state.SkipWithError(appended.status().ToString().c_str());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.SetBytesProcessed(state.iterations() * state.range(0) * state.range(1));
}
BENCHMARK(BM_StoreAppend)
    ->Args({1, 100, 0})
    ->Args({1000, 100, 0})
    ->Args({64, 1024, 0})
    ->Args({1000, 100, 1})
    ->UseRealTime();

// Reads of up to 10,000 records (at most 1 MiB) from a partition holding 200,000 records of
// range(0) bytes in batches of 1,000, wrapping around at the end: the catch-up read path
// (RocksDB seek and scan, CRC check, decoding into Records).
static void BM_StoreRead(benchmark::State& state) {
  TempStore store(es::FsyncPolicy::kInterval);
  if (store.get() == nullptr) return state.SkipWithError("cannot open a store under $TMPDIR");
  const std::vector<es::Record> batch = Records(1000, state.range(0));
  constexpr int64_t kRecords = 200000;
  for (int64_t i = 0; i < kRecords; i += 1000) {
    if (!store.get()->Append("bench", 0, batch).ok()) return state.SkipWithError("append");
  }
  int64_t offset = 0;
  int64_t records = 0;
  for (auto _ : state) {
    auto read = store.get()->Read("bench", 0, offset, {.max_bytes = 1 << 20, .max_records = 10000});
    if (!read.ok()) return state.SkipWithError(read.status().ToString().c_str());
    records += static_cast<int64_t>(read->records.size());
    offset = read->next_offset >= kRecords ? 0 : read->next_offset;
  }
  state.SetItemsProcessed(records);
  state.SetBytesProcessed(records * state.range(0));
}
BENCHMARK(BM_StoreRead)->Arg(100)->Arg(1024)->UseRealTime();

BENCHMARK_MAIN();
