// `evlog bench` command-line arguments: what each mode (produce, consume, e2e) accepts, how
// flag values are parsed, and the --help texts. Kept apart from args.{h,cc} so that the bench
// command adds only a few hooks to the shared parser (args.cc looks the flags up here and
// calls ParseBenchArgs).
//
// Thread safety: free functions and constants without shared state.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace evlog::cli {

enum class BenchMode { kProduce, kConsume, kEndToEnd };

// A bench flag: its name (without "--") and whether it takes a value.
struct BenchFlag {
  absl::string_view name;
  bool takes_value;
};

struct BenchArgs {
  BenchMode mode = BenchMode::kProduce;
  std::string topic;  // --topic (required)
  std::string group;  // --group (consume: required; e2e: default "evlog-bench-e2e-<pid>")
  // produce/e2e: events to send in total (all producers together). consume: stop after this
  // many (default: the backlog as of the start). Default for produce: 1,000,000; e2e: 100,000.
  std::optional<int64_t> events;
  int32_t size = 100;      // --size: value bytes per event (e2e: at least 8)
  int32_t producers = 1;   // --producers: concurrent producers, each its own Producer
  int32_t partitions = 0;  // --partitions for a topic created by the bench; 0: = producers
  std::optional<int64_t> batch_bytes;   // --batch-bytes; absent: the library's default (1 MiB)
  std::optional<int64_t> linger_ms;     // --linger-ms; absent: the library's default (5 ms)
  std::optional<int32_t> in_flight;     // --in-flight batches per producer; absent: default (8)
  std::optional<int64_t> buffer_bytes;  // --buffer-bytes per producer; absent: default (64 MiB)
  double rate = 0;                      // --rate: events/s over all producers; 0: unlimited
  std::optional<int64_t> duration_ms;   // --duration: stop sending after this long
  bool json = false;                    // --json: one JSON object on stdout instead of a summary
};

// The flags of a mode (global flags such as --server and --help are not included).
const std::vector<BenchFlag>& BenchFlags(BenchMode mode);

// Fills `args` (whose mode is set) from `flags` (name -> value, "" for flags without one).
// Returns INVALID_ARGUMENT naming the bad flag and what it accepts; the message does not
// mention --help (the caller appends its usual pointer).
absl::Status ParseBenchArgs(const std::map<std::string, std::string>& flags, BenchArgs& args);

// Parses a count that may carry a k/M/G suffix (1000-based) or underscores/commas as digit
// separators: "1000000", "1M", "1_000_000", "2.5k". Returns INVALID_ARGUMENT for anything else,
// for negative values and for values past 2^62.
absl::Status ParseCount(absl::string_view flag, absl::string_view text, int64_t* out);

// Parses a byte size: a whole number with an optional B, KiB/K/k (1024), MiB/M (1024^2),
// GiB/G (1024^3) suffix ("100", "1KiB", "64k"). INVALID_ARGUMENT otherwise.
absl::Status ParseBytes(absl::string_view flag, absl::string_view text, int64_t* out);

// --help texts.
absl::string_view BenchHelp(BenchMode mode);
absl::string_view BenchGroupHelp();  // `evlog bench --help`

}  // namespace evlog::cli
