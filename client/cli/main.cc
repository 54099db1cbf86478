// evlog: the command line of the evlog event-log service. See args.h for the grammar and
// DESIGN.md ("The command line, as users script it") for the contract.
#include <malloc.h>

#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "client/cli/args.h"
#include "client/cli/commands.h"

namespace {

// glibc's malloc by default hands large blocks back to the kernel as soon as they are freed
// (blocks above a moving mmap threshold, and a heap top above a trim threshold). A consumer
// catching up frees and allocates megabytes per response (gRPC's read buffers, the records
// handed out by Poll), so the kernel then zero-fills and faults those pages in again on
// every response: measured on `evlog bench consume` (10M x 100 B), 150-210k page faults and
// about half of the client's CPU, most of it inside the kernel's socket copy into the fresh
// buffers. Keeping freed memory for reuse (blocks up to 4 MiB from the heap, up to 64 MiB of
// free heap kept per arena) cut that to 60-90k faults and the client's CPU by ~45%. A short-
// lived command line tool can afford that retained memory; evlogd, which must stay within its
// --memory-budget, keeps glibc's defaults.
void KeepFreedMemoryForReuse() {
  mallopt(M_MMAP_THRESHOLD, 4 << 20);
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's Abseil is built without NDEBUG, so every absl::Mutex acquisition also ran the
  // deadlock detector (perf: GraphCycles::GetId ~2% of the producer's CPU). Lock order is
  // checked by the tests' thread annotations, not at run time in production binaries.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  KeepFreedMemoryForReuse();
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<evlog::cli::Invocation> inv = evlog::cli::ParseCommandLine(args);
  if (!inv.ok()) {
    evlog::cli::PrintError(inv.status());
    return evlog::cli::kExitUsage;
  }
  return evlog::cli::Run(*inv);
}
