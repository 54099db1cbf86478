// The `evlog` quota commands: `topic alter`, `quota set|delete|list`, and the quota flags of
// `topic create`. Their help texts, flag parsing (no server, no side effects: unit-tested in
// args_test.cc) and the commands themselves (which talk to AdminService).
//
//   topic create NAME ... [--max-bytes-per-sec=SIZE] [--max-records-per-sec=N]
//   topic alter NAME [--max-bytes-per-sec=SIZE|0] [--max-records-per-sec=N|0]
//   quota set (--producer-id=N | --default-producer) [--bytes-per-sec=SIZE]
//             [--records-per-sec=N]
//   quota delete (--producer-id=N | --default-producer)
//   quota list [--json]
//
// SIZE is a whole number of bytes with an optional unit: 1048576, 512KiB, 10MiB, 1GiB (powers
// of 1024) or 500KB, 10MB (powers of 1000); 0 means unlimited.
//
// Thread safety: free functions without shared state; the Run* functions are called once per
// process, from main.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cli/args.h"

namespace evlog::cli {

extern const absl::string_view kTopicAlterHelp;
extern const absl::string_view kQuotaSetHelp;
extern const absl::string_view kQuotaDeleteHelp;
extern const absl::string_view kQuotaListHelp;
extern const absl::string_view kQuotaGroupHelp;

// Parses a quota rate in bytes per second for `flag` (named in errors): SIZE as above, >= 0.
// Returns INVALID_ARGUMENT naming the flag and the accepted forms.
absl::StatusOr<int64_t> ParseByteRate(absl::string_view flag, absl::string_view text);

// Fills inv.quota from the flags of `command` (kTopicCreate, kTopicAlter, kQuotaSet,
// kQuotaDelete; others are ignored). Returns INVALID_ARGUMENT with a sentence naming the bad
// flag (the caller appends the --help pointer).
absl::Status ParseQuotaFlags(Command command, const std::map<std::string, std::string>& flags,
                             Invocation& inv);

// The commands. Each returns kExitOk or kExitFailure (after printing the error).
int RunTopicAlter(const Invocation& inv);
int RunQuotaSet(const Invocation& inv);
int RunQuotaDelete(const Invocation& inv);
int RunQuotaList(const Invocation& inv);

// "unlimited", or e.g. "1048576 bytes/s (1 MiB/s)"; for describe and list output.
std::string FormatByteRate(int64_t bytes_per_sec);
std::string FormatRecordRate(int64_t records_per_sec);

}  // namespace evlog::cli
