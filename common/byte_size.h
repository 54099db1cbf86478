// Byte sizes as people write them on a command line ("1048576", "512MiB", "2GiB") and as
// evlogd and evlog print them back in logs and errors. The one parser of sizes for both
// (evlogd --memory-budget, evlog --spool-max-bytes, quota rates in bytes/s).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace evlog {

// Parses a non-negative byte size: digits, optionally followed (without a space) by a unit:
// B; KiB, MiB, GiB, TiB (powers of 1024); KB, MB, GB, TB (powers of 1000). Units are
// case-sensitive, because "Mb" (megabits) and "MB" mean different things.
// Returns the size in bytes.
// Errors: INVALID_ARGUMENT naming `flag` (e.g. "memory-budget"), the value and the accepted
// forms, for anything else (empty, negative, fractional, unknown unit, above 2^62 bytes).
// Thread-safe (pure function).
absl::StatusOr<int64_t> ParseByteSize(absl::string_view flag, absl::string_view text);

// `bytes` in the largest binary unit that divides it exactly, or with one decimal in the
// largest unit it exceeds ("256MiB", "1.5GiB", "1000B"): for logs and messages.
// Thread-safe (pure function).
std::string FormatByteSize(int64_t bytes);

}  // namespace evlog
