// The `evlog` command line: parsing argv into an Invocation, and the --help texts.
//
// This is the contract of DESIGN.md ("The command line, as users script it"), extended with
// `topic list|describe --json`, `health`, `--timeout`, relative/RFC 3339 times, `group delete`,
// `group ... --json`, `--force`, and consume's session timeout and auto offset reset:
//
//   evlog [--server=HOST:PORT] [--timeout=DURATION] COMMAND ...
//     topic create NAME [--partitions=N] [--retention-ms=MS] [--retention-bytes=B]
//     topic list [--json] | topic describe NAME [--json] | topic delete NAME
//     topic create NAME ... [--max-bytes-per-sec=SIZE] [--max-records-per-sec=N]
//     topic alter NAME [--max-bytes-per-sec=SIZE|0] [--max-records-per-sec=N|0]
//     quota set (--producer-id=N | --default-producer) [--bytes-per-sec=SIZE]
//               [--records-per-sec=N]
//     quota delete (--producer-id=N | --default-producer) | quota list [--json]
//     produce TOPIC [--key=K] [--partition=P] [--spool-dir=DIR [--spool-max-bytes=SIZE]
//             [--spool-full=block|fail] [--drain-timeout=DURATION]]   (spool: spool_cmd.h)
//     replay TOPIC (--from-offset=N | --from-beginning | --from-time=T) [--partition=P]
//            [--to-offset=M] [--max=N] [--follow]
//     consume TOPIC --group=G [--max=N] [--idle-timeout-ms=MS] [--session-timeout-ms=MS]
//             [--auto-offset-reset=earliest|latest]
//     group list [--json] | group describe G [--json] | group delete G [--force]
//     group reset G --topic=T (--to-offset=N | --to-earliest | --to-latest | --to-time=T
//                              | --shift-by=K) [--partition=P] [--force] [--json]
//     health [--service=NAME]
//     spool status DIR [--json] | spool drain DIR
//     bench (produce|consume|e2e) --topic=T ...   (see bench_args.h)
//     help [COMMAND ...]
//
// Flags take their value as `--flag=value` or as the next argument (`--flag value`); global
// flags may also follow the command. `--` ends the flags. Parsing needs no server and has no
// side effects, so it is unit-tested on its own (args_test.cc).
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/cli/bench_args.h"

namespace evlog::cli {

inline constexpr absl::string_view kDefaultServer = "127.0.0.1:7070";

// Exit statuses of the contract.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // anything but a usage error: server errors, I/O
inline constexpr int kExitUsage = 2;    // the command line itself is wrong

enum class Command {
  kHelp,  // print Invocation::help_text to stdout, exit 0
  kTopicCreate,
  kTopicList,
  kTopicDescribe,
  kTopicDelete,
  kTopicAlter,
  kQuotaSet,
  kQuotaDelete,
  kQuotaList,
  kProduce,
  kReplay,
  kConsume,
  kGroupList,
  kGroupDescribe,
  kGroupReset,
  kGroupDelete,
  kHealth,
  kSpoolStatus,  // spool status DIR (spool_cmd.h)
  kSpoolDrain,   // spool drain DIR (spool_cmd.h)
  kBench,        // bench produce|consume|e2e (bench_cmd.h); the mode is in Invocation::bench
};

// Where `replay` starts in each partition it reads.
enum class StartKind {
  kOffset,     // --from-offset=N
  kBeginning,  // --from-beginning: each partition's start offset
  kTime,       // --from-time=T: the first record with timestamp >= T
};

struct TopicCreateArgs {
  int32_t partitions = 1;
  int64_t retention_ms = -1;     // -1: keep forever
  int64_t retention_bytes = -1;  // -1: no size limit
};

// Quota flags of `topic create`, `topic alter`, `quota set` and `quota delete` (quota_cmd.h).
// Rates left empty were not given (0 given means unlimited).
struct QuotaArgs {
  std::optional<int64_t> bytes_per_sec;
  std::optional<int64_t> records_per_sec;
  int64_t producer_id = 0;        // quota set/delete --producer-id
  bool default_producer = false;  // quota set/delete --default-producer
};

struct ProduceArgs {
  std::optional<std::string> key;    // the key of every record; absent: empty key
  std::optional<int32_t> partition;  // absent: the server picks by key
  // --spool-dir: produce through a durable local spool (spool_cmd.h); the other spool flags
  // need it.
  std::optional<std::string> spool_dir;
  std::optional<int64_t> spool_max_bytes;            // absent: the library's 1 GiB
  bool spool_full_fail = false;                      // --spool-full=fail (default block)
  absl::Duration drain_timeout = absl::Seconds(10);  // wait for acks after EOF
};

struct ReplayArgs {
  StartKind start = StartKind::kBeginning;
  int64_t from_offset = 0;           // with kOffset
  int64_t from_time_ms = 0;          // with kTime, ms since the Unix epoch
  std::optional<int32_t> partition;  // absent: every partition
  std::optional<int64_t> to_offset;  // exclusive: records with offsets below it
  std::optional<int64_t> max;        // stop after this many records in total
  bool follow = false;
};

struct ConsumeArgs {
  std::string group;                          // --group (required)
  std::optional<int64_t> max;                 // exit after this many records
  std::optional<int64_t> idle_timeout_ms;     // exit after this long without records
  std::optional<int64_t> session_timeout_ms;  // absent: the library's default (10 s)
  bool auto_offset_reset_latest = false;      // --auto-offset-reset=latest
};

// Where `group reset` moves the committed offsets.
enum class ResetKind { kToOffset, kToEarliest, kToLatest, kToTime, kShiftBy };

struct GroupResetArgs {
  ResetKind kind = ResetKind::kToEarliest;
  int64_t value = 0;                 // the offset, the time (ms since the epoch) or the shift
  std::optional<int32_t> partition;  // absent: every partition of --topic
};

// A parsed command line.
struct Invocation {
  Command command = Command::kHelp;
  std::string help_text;  // with kHelp
  std::string server = std::string(kDefaultServer);
  absl::Duration timeout = absl::Seconds(30);  // deadline of each call (--timeout)
  std::string topic;                           // topic commands, produce, replay, consume,
                                               // group reset --topic
  std::string group;                           // group describe/reset/delete
  bool json = false;                           // topic/group list/describe/reset --json
  bool force = false;                          // group reset/delete --force
  std::string health_service;                  // health --service
  std::string spool_dir;                       // spool status/drain DIR
  TopicCreateArgs topic_create;
  QuotaArgs quota;
  ProduceArgs produce;
  ReplayArgs replay;
  ConsumeArgs consume;
  GroupResetArgs group_reset;
  BenchArgs bench;  // bench produce|consume|e2e
};

// Parses the arguments after the program name. `now` anchors relative times (--from-time=-5m).
// Returns INVALID_ARGUMENT with a sentence naming the bad argument and pointing to the
// relevant --help on any usage error; the caller prints it and exits kExitUsage.
absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& args,
                                            absl::Time now = absl::Now());

// Parses a point in time for --from-time or --to-time (named by `flag`, for the error
// message), in one of three forms:
//   1700000000000                 milliseconds since the Unix epoch (UTC)
//   2024-05-01T12:00:00Z          RFC 3339, with optional fraction and a Z or +hh:mm offset
//   -15m, -2h30m, -90s            that long before `now` (Go/Abseil duration syntax)
// Returns the time in ms since the epoch, or INVALID_ARGUMENT saying what is accepted.
absl::StatusOr<int64_t> ParseTimeMs(absl::string_view text, absl::Time now,
                                    absl::string_view flag = "from-time");

// The whole tool's usage text (`evlog --help`).
std::string ToolUsage();

}  // namespace evlog::cli
