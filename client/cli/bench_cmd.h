// `evlog bench produce|consume|e2e`: load generators built on the client library (Producer,
// Consumer), reporting throughput and latency as a summary or one JSON object (bench_stats.h).
// See `evlog bench MODE --help` (bench_args.cc) for the flags and the output.
//
// Thread safety: called once per process, from main.
#pragma once

#include "client/cli/args.h"

namespace evlog::cli {

// Runs the bench mode of inv.bench against inv.server; prints the result to stdout. Returns
// kExitOk if every event was acknowledged (and, for e2e, received); kExitFailure otherwise,
// after printing the result with its error count (with --json the object is still printed, so
// scripts see partial results) and the first error as `evlog: STATUS_NAME: ...` on stderr.
// REQUIRES: inv.command is one of the bench commands.
int RunBench(const Invocation& inv);

}  // namespace evlog::cli
