// evlogd: the evlog server process. Parses flags, opens the store, serves gRPC until SIGTERM
// or SIGINT, then shuts down gracefully (drain, finish or cancel calls within
// --shutdown-timeout, sync, close the store) and exits 0. See `evlogd --help`.
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/byte_size.h"
#include "server/flags.h"
#include "server/server.h"
#include "server/signals.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"
#include "storage/log_store.h"

namespace {

// Extra time after --shutdown-timeout before a stuck shutdown is abandoned with exit 1.
constexpr absl::Duration kShutdownGrace = absl::Seconds(10);

// glibc's malloc hands freed memory back to the kernel eagerly: blocks above a moving mmap
// threshold are unmapped when freed, and each arena's free heap top is trimmed past a small
// threshold. Every produce request's buffers (gRPC's read slices, the batch) were then fresh
// pages that the kernel zero-filled and faulted in: perf of evlogd under 16 producers of
// 1-KiB events put a third of its CPU in the socket copy into such pages and in page faults,
// at ~5 us per event. Keeping freed memory for reuse took it to ~2.8 us per event and
// throughput up ~40% (bench/README.md). The memory kept is bounded so that it fits the
// budget's unassigned quarter: blocks up to 4 MiB come from the heap, at most 4 arenas (one
// per thread contending at once on 2 cores is plenty), and each keeps at most budget/32
// (2 to 8 MiB) free at its top: at most 32 MiB in all. Must run before threads start, so
// that the arena limit holds for all of them.
void KeepFreedMemoryForReuse(int64_t memory_budget) {
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_ARENA_MAX, 4);
  mallopt(M_TRIM_THRESHOLD,
          static_cast<int>(std::clamp<int64_t>(memory_budget / 32, 2 << 20, 8 << 20)));
}

// Descriptors kept for data files, RocksDB's files and everything else beyond the connections.
constexpr rlim_t kFileDescriptorReserve = 1024;

// Every client connection holds a file descriptor, as does every segment data file, and RocksDB
// keeps its table files open. Debian's default soft limit is 1024 while the hard limit is
// usually far higher (systemd's is 524288): at the soft limit, --max-connections' 1000
// producers alone would exhaust it, and accept() failing with EMFILE would turn every new
// client away, health checks included. So evlogd raises its soft limit to the hard one (as Go's
// runtime does for every program) and warns when even that leaves fewer than
// kFileDescriptorReserve beyond `max_connections`. Never fails: a limit it cannot raise is
// logged and kept.
void RaiseOpenFileLimit(int64_t max_connections) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    spdlog::warn("cannot read the open files limit: {}", std::strerror(errno));
    return;
  }
  const rlim_t was = limit.rlim_cur;
  // An unlimited hard limit cannot be the soft one (the kernel caps it at fs.nr_open).
  const rlim_t target = limit.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : limit.rlim_max;
  if (limit.rlim_cur < target) {
    limit.rlim_cur = target;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) {
      spdlog::warn("cannot raise the open files limit from {} to {}: {}", was, target,
                   std::strerror(errno));
      limit.rlim_cur = was;
    } else {
      spdlog::info("open files limit raised from {} to {}", was, target);
    }
  }
  const rlim_t needed = static_cast<rlim_t>(max_connections) + kFileDescriptorReserve;
  if (limit.rlim_cur < needed) {
    spdlog::warn(
        "the open files limit ({}) leaves fewer than {} descriptors for files beyond "
        "--max-connections={}; evlogd may refuse connections or fail to open segments under "
        "load: raise the hard limit (`ulimit -Hn {}` or systemd's LimitNOFILE) or lower "
        "--max-connections",
        limit.rlim_cur, kFileDescriptorReserve, max_connections, needed);
  }
}

int Run(int original_argc, char** original_argv) {
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex acquisition also ran the
  // deadlock detector (perf: GraphCycles::GetId ~2% of the producer's CPU). Lock order is
  // checked by the tests' thread annotations, not at run time in production binaries.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Normalize a copy, so that `ps` keeps showing the command line as it was typed.
  std::vector<std::string> args(original_argv, original_argv + original_argc);
  std::vector<char*> arg_pointers;
  for (std::string& arg : args) arg_pointers.push_back(arg.data());
  arg_pointers.push_back(nullptr);
  const int argc = original_argc;
  char** argv = arg_pointers.data();
  evlog::server::NormalizeFlagNames(argc, argv);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) break;
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      std::fputs(evlog::server::UsageText().c_str(), stdout);
      return 0;
    }
  }
  absl::SetProgramUsageMessage("the evlog server; run `evlogd --help` for its flags");
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);

  auto logger = spdlog::stderr_color_mt("evlogd");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");

  if (rest.size() > 1) {
    spdlog::error("unexpected argument \"{}\"; evlogd takes only flags (see --help)", rest[1]);
    return 2;
  }
  absl::StatusOr<evlog::server::ServerOptions> options = evlog::server::OptionsFromFlags();
  if (!options.ok()) {
    spdlog::error("{}", options.status().ToString());
    return 2;
  }

  KeepFreedMemoryForReuse(options->memory.total);
  RaiseOpenFileLimit(options->admission.max_connections);
  spdlog::info("{}", evlog::server::DescribeMemoryBudget(options->memory));
  if (options->store.memtable_budget_bytes != static_cast<uint64_t>(options->memory.memtables) ||
      options->store.block_cache_bytes != static_cast<uint64_t>(options->memory.block_cache) ||
      options->store.max_queued_bytes != static_cast<uint64_t>(options->memory.writer_queue)) {
    spdlog::info("finer flags override the split: memtables {}, block cache {}, writer queues {}",
                 evlog::FormatByteSize(static_cast<int64_t>(options->store.memtable_budget_bytes)),
                 evlog::FormatByteSize(static_cast<int64_t>(options->store.block_cache_bytes)),
                 evlog::FormatByteSize(static_cast<int64_t>(options->store.max_queued_bytes)));
  }

  evlog::server::ShutdownSignals::Install();

  absl::StatusOr<std::unique_ptr<evlog::storage::LogStore>> store =
      evlog::storage::LogStore::Open(options->data_dir, options->store);
  if (!store.ok()) {
    spdlog::error("cannot open data directory {}: {}", options->data_dir,
                  store.status().ToString());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<evlog::server::EvlogServer>> server =
      evlog::server::EvlogServer::Start(*options, store->get());
  if (!server.ok()) {
    spdlog::error("{}", server.status().ToString());
    return 1;
  }
  if (!(*server)->metrics_address().empty()) {
    // On stderr, before the ready line: stdout carries exactly one line (scripts wait for it),
    // and whoever reads that line can then find this one in the log.
    std::fprintf(stderr, "evlogd metrics on %s\n", (*server)->metrics_address().c_str());
    std::fflush(stderr);
  }
  std::printf("evlogd listening on %s\n", (*server)->address().c_str());
  std::fflush(stdout);
  spdlog::info("serving {} (data {}, fsync {})", (*server)->address(), options->data_dir,
               options->fsync);

  const int signal = evlog::server::ShutdownSignals::WaitForShutdown();
  spdlog::info("signal {}: shutting down; in-flight calls have {}", signal,
               absl::FormatDuration(options->shutdown_timeout));
  std::thread([deadline = options->shutdown_timeout + kShutdownGrace] {
    absl::SleepFor(deadline);
    spdlog::error("shutdown did not finish within {}; exiting", absl::FormatDuration(deadline));
    spdlog::default_logger()->flush();
    std::_Exit(1);
  }).detach();

  (*server)->Shutdown(options->shutdown_timeout);
  server->reset();
  if (absl::Status s = (*store)->Sync(); !s.ok()) {
    spdlog::error("final sync failed: {}", s.ToString());
  }
  store->reset();
  spdlog::info("stopped cleanly");
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
