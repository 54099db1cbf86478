// Micro-benchmarks of storage hot paths: batch encode/decode and CRC32C. Run with
// `cmake --build build --target micro`.
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "storage/batch_codec.h"
#include "storage/crc32c.h"

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

BENCHMARK_MAIN();
