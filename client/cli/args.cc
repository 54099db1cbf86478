#include "client/cli/args.h"

#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/cli/quota_cmd.h"
#include "client/cli/spool_cmd.h"
#include "common/byte_size.h"

namespace evlog::cli {
namespace {

// A flag a command accepts.
struct FlagSpec {
  absl::string_view name;  // without the leading "--"
  bool takes_value;
};

// One leaf command: its words, positional arguments, flags and help text.
struct CommandSpec {
  std::vector<absl::string_view> words;  // e.g. {"topic", "create"}
  Command command;
  std::vector<absl::string_view> positionals;  // names, all required
  std::vector<FlagSpec> flags;                 // besides the global ones
  absl::string_view help;
};

constexpr absl::string_view kGlobalHelp = R"(Global flags (before or after the command):
  --server=HOST:PORT   the evlogd to talk to (default 127.0.0.1:7070)
  --timeout=DURATION   deadline of each call to the server, e.g. 10s, 500ms (default 30s);
                       for produce, replay and consume streams, the longest wait for any
                       answer; consume fails if the server is unreachable for this long
  --help, -h           show help
)";

constexpr absl::string_view kTopicCreateHelp =
    R"(Usage: evlog topic create NAME [--partitions=N] [--retention-ms=MS] [--retention-bytes=B]
                          [--max-bytes-per-sec=SIZE] [--max-records-per-sec=N]

Creates topic NAME ([A-Za-z0-9._-]{1,249}) with N partitions (default 1).
  --partitions=N         number of partitions, fixed for the topic's life (default 1)
  --retention-ms=MS      keep records at least MS milliseconds; -1 keeps them forever (default)
  --retention-bytes=B    keep at most about B bytes per partition; -1: no limit (default)
  --max-bytes-per-sec=SIZE   rate quota: bytes of records per second over all partitions
                         (1048576, 512KiB, 10MiB, 1GiB; default 0: unlimited); see
                         `evlog topic alter --help`
  --max-records-per-sec=N    rate quota: records per second (default 0: unlimited)
Prints `created topic NAME` to stdout. Fails with ALREADY_EXISTS if the name is taken.
)";

constexpr absl::string_view kTopicListHelp = R"(Usage: evlog topic list [--json]

Prints the topics, one name per line, sorted. With --json prints one JSON array of names.
)";

constexpr absl::string_view kTopicDescribeHelp = R"(Usage: evlog topic describe NAME [--json]

Prints the topic's configuration and, per partition, its start offset (lowest readable),
end offset (next to be written) and stored bytes. With --json prints one JSON object:
  {"name":...,"partitions":N,"retention_ms":MS,"retention_bytes":B,"created_ms":T,
   "max_bytes_per_sec":B,"max_records_per_sec":R (the quota; 0: unlimited),
   "partition_info":[{"partition":0,"start_offset":0,"end_offset":17,"bytes":1234},...]}
Fails with NOT_FOUND if there is no such topic.
)";

constexpr absl::string_view kTopicDeleteHelp = R"(Usage: evlog topic delete NAME

Deletes topic NAME and all its records. Prints `deleted topic NAME` to stdout.
Fails with NOT_FOUND if there is no such topic.
)";

constexpr absl::string_view kProduceHelp = R"(Usage: evlog produce TOPIC [--key=K] [--partition=P]

Reads standard input, one event per line: the line without its newline is the event's value
(a last line without a newline counts too). Events are batched and several batches are in
flight at once; the order of the lines is kept within each partition.
  --key=K          the key of every event (default: the empty key). The key picks the
                   partition (a stable hash, see evlog.proto), so without --key and
                   --partition every event goes to the partition of the empty key.
  --partition=P    write every event to partition P instead of choosing by key.
Exits 0 only after every line is acknowledged (durably stored) by the server, then prints
`produced N events` to stderr. On an error it stops, prints the error and exits 1; events
acknowledged before the error stay stored.

With --spool-dir=DIR, every event is first written (fsynced) to a durable local spool in DIR,
then delivered from there in order and exactly once, so producing goes on while the server
cannot be reached; a later `evlog produce` or `evlog spool drain` on the same DIR delivers what
is left (one process per DIR at a time).
  --spool-dir=DIR            the spool directory (created if needed)
  --spool-max-bytes=SIZE     the spool's size limit, e.g. 512MiB, 2GB (default 1GiB)
  --spool-full=block|fail    when the spool is full: wait for room (default), or stop with
                             RESOURCE_EXHAUSTED (exit 1; the events before it are safe)
  --drain-timeout=DURATION   after the end of input, wait this long for acknowledgements
                             (default 10s); what is not acknowledged by then stays in the spool
Then it exits 0 once every line is acknowledged or safely in the spool, and prints
`produced N events: A acknowledged` or
`produced N events: A acknowledged, S in the spool at DIR (drain with: evlog spool drain DIR)`.
It exits 1 if events were refused by the server for good (kept as dead letters in DIR, see
`evlog spool status DIR`). Keyed events (no --partition) need the topic's partition count: the
server is asked once and the answer is kept in DIR, so a producer that never reached the server
with this DIR needs --partition. SIGINT/SIGTERM stop reading; what was read is spooled.
)";

constexpr absl::string_view kSpoolStatusHelp = R"(Usage: evlog spool status DIR [--json]

Describes the spool in DIR without contacting the server (also while a producer uses it):
its producer id, the pending events per topic and partition (batches, records, bytes, next
sequence number, oldest event), and its dead letters (batches the server refused for good,
kept on disk with the reason). With --json prints one JSON object:
  {"dir":...,"producer_id":P,"producer_epoch":E,"pending_batches":B,"pending_records":R,
   "bytes":N,"oldest_ms":T,"dead_letter_batches":D,"dead_letter_records":DR,
   "partitions":[{"topic":"t","partition":0,"batches":B,"records":R,"bytes":N,"oldest_ms":T,
                  "next_sequence":S,"producer_overrides":[...]}],
   "dead_letters":[{"id":I,"topic":"t","partition":0,"records":R,"base_sequence":S,
                    "bytes":N,"reason":{"code":5,"status":"NOT_FOUND","message":...}}]}
Fails with NOT_FOUND if DIR holds no spool.
)";

constexpr absl::string_view kSpoolDrainHelp = R"(Usage: evlog spool drain DIR

Delivers every pending event of the spool in DIR to the server (--server), in order and exactly
once, and exits 0 when the spool is empty, printing `drained N events from DIR`. Gives up with
exit 1 when nothing could be delivered for --timeout (the server is unreachable), and exits 1 if
events were refused by the server for good (dead letters, see `evlog spool status DIR`). Fails
with FAILED_PRECONDITION if another process uses DIR.
)";

constexpr absl::string_view kReplayHelp =
    R"(Usage: evlog replay TOPIC (--from-offset=N | --from-beginning | --from-time=T)
                   [--partition=P] [--to-offset=M] [--max=N] [--follow]

Prints records as JSON lines, one object per line, keys in this order:
  {"topic":"t","partition":0,"offset":17,"timestamp_ms":1700000000000,"key":"k","value":"v",
   "headers":{}}
Key and value are JSON strings when valid UTF-8, else `key_b64`/`value_b64` (base64);
header values that are not UTF-8 go, base64-encoded, into "headers_b64". Commits nothing.
  --from-offset=N    start at offset N (in every partition read). An offset past a partition's
                     end offset is an OUT_OF_RANGE error.
  --from-beginning   start at each partition's start offset
  --from-time=T      start at the first record with timestamp >= T; T is milliseconds since
                     the Unix epoch (1700000000000), RFC 3339 (2024-05-01T12:00:00Z,
                     2024-05-01T14:00:00.5+02:00) or a time ago (-15m, -2h30m, -90s)
  --partition=P      read only partition P (default: every partition, one after the other in
                     partition order; with --follow, all at once)
  --to-offset=M      stop before offset M (M itself is not printed)
  --max=N            stop after N records in total
  --follow           keep waiting for new records instead of stopping at the end offset as of
                     the start; ends at --to-offset, --max, or on Ctrl-C
)";

constexpr absl::string_view kConsumeHelp =
    R"(Usage: evlog consume TOPIC --group=G [--max=N] [--idle-timeout-ms=MS]
                     [--session-timeout-ms=MS] [--auto-offset-reset=earliest|latest]

Joins consumer group G for TOPIC and prints the records of the partitions the group assigns to
this member as JSON lines, in the format of `evlog replay` (each partition in offset order;
lines of different partitions interleave). After each batch of lines is written to stdout it
commits the group's offsets past them, so the group goes on after the last printed record.
Records are printed at least once: if the command is killed after printing a batch but before
committing it, the group delivers that batch again.
Several `evlog consume` with the same --group share the topic's partitions; each record goes
to one of them. When one starts, stops or dies (after its session timeout), the partitions are
moved between the others.
  --group=G                    the consumer group (required; [A-Za-z0-9._-]{1,249})
  --max=N                      exit after printing N records
  --idle-timeout-ms=MS         exit after MS milliseconds without a new record
  --session-timeout-ms=MS      the server gives this member's partitions to others if it
                               hears nothing from it for MS ms (100..600000; default 10000)
  --auto-offset-reset=earliest|latest
                               where partitions without a committed offset start, if this
                               command creates the group: the first stored record (default)
                               or only records produced from now on
Without --max and --idle-timeout-ms it runs until Ctrl-C or SIGTERM. On each of these ends it
commits what it printed, leaves the group (its partitions go to the other members at once) and
exits 0. It exits 1 if the server fails, or cannot be reached for --timeout.
)";

constexpr absl::string_view kGroupListHelp = R"(Usage: evlog group list [--json]

Prints the consumer groups, one name per line, sorted. With --json prints one JSON array.
)";

constexpr absl::string_view kGroupDescribeHelp = R"(Usage: evlog group describe GROUP [--json]

Prints the group's generation and members (id, client, last heartbeat, partitions owned), and
per topic and partition: the committed offset (the next offset the group will read; "-" if
nothing was committed), the end offset (the next to be written), the lag (end - committed, or
end - start offset without a commit), the owning member and the time of the last commit.
With --json prints one JSON object:
  {"group":"g","generation":3,"auto_offset_reset":"earliest",
   "members":[{"member_id":"m","client_id":"host:42","topics":["t"],
               "assignment":[{"topic":"t","partition":0}],"last_heartbeat_ms":T}],
   "partitions":[{"topic":"t","partition":0,"owner":"m","committed_offset":5,
                  "commit_time_ms":T,"start_offset":0,"end_offset":9,"lag":4}]}
where committed_offset is -1 and commit_time_ms 0 if nothing was committed, and owner is ""
if no member owns the partition. Fails with NOT_FOUND if there is no such group.
)";

constexpr absl::string_view kGroupResetHelp =
    R"(Usage: evlog group reset GROUP --topic=T (--to-offset=N | --to-earliest | --to-latest
                          | --to-time=T | --shift-by=K) [--partition=P] [--force] [--json]

Sets group GROUP's committed offsets on topic T: its consumers read from there next.
  --topic=T          the topic (required)
  --to-offset=N      offset N; it must lie within each reset partition's start..end offsets
                     (OUT_OF_RANGE otherwise)
  --to-earliest      each partition's start offset: read again everything still stored
  --to-latest        each partition's end offset: skip everything not read yet
  --to-time=T        the first record with timestamp >= T, or the end offset if none; T is
                     milliseconds since the epoch, RFC 3339 (2024-05-01T12:00:00Z) or a time
                     ago (-15m, -2h30m)
  --shift-by=K       the committed offset (the start offset if none) plus K; negative K
                     rewinds. Kept within the partition's start..end offsets
  --partition=P      reset only partition P (default: every partition of T)
  --force            reset even while the group has live members; they are removed from the
                     group, join again and read from the new offsets. Without it a group with
                     live members is refused with FAILED_PRECONDITION
  --json             print the new offsets as one JSON object
                     {"group":"g","topic":"t","offsets":[{"partition":0,"offset":5},...]}
Prints the new committed offset of each partition reset.
)";

constexpr absl::string_view kGroupDeleteHelp = R"(Usage: evlog group delete GROUP [--force]

Deletes consumer group GROUP: its committed offsets and state. Refused with
FAILED_PRECONDITION while the group has live members, unless --force. Prints
`deleted group GROUP`. Fails with NOT_FOUND if there is no such group.
)";

constexpr absl::string_view kHealthHelp = R"(Usage: evlog health [--service=NAME]

Asks the server's standard gRPC health service (grpc.health.v1.Health/Check) whether it is
serving. Exits 0 and prints SERVING when it is; otherwise prints the status and exits 1.
  --service=NAME   the service to ask about (default: "", the whole server)
)";

// The flags of a bench mode, as the parser's FlagSpecs (the list lives in bench_args.cc).
std::vector<FlagSpec> BenchFlagSpecs(BenchMode mode) {
  std::vector<FlagSpec> specs;
  for (const BenchFlag& f : BenchFlags(mode)) specs.push_back({f.name, f.takes_value});
  return specs;
}

const std::vector<CommandSpec>& Commands() {
  static const auto* commands = new std::vector<CommandSpec>{
      {{"topic", "create"},
       Command::kTopicCreate,
       {"NAME"},
       {{"partitions", true},
        {"retention-ms", true},
        {"retention-bytes", true},
        {"max-bytes-per-sec", true},
        {"max-records-per-sec", true}},
       kTopicCreateHelp},
      {{"topic", "alter"},
       Command::kTopicAlter,
       {"NAME"},
       {{"max-bytes-per-sec", true}, {"max-records-per-sec", true}},
       kTopicAlterHelp},
      {{"quota", "set"},
       Command::kQuotaSet,
       {},
       {{"producer-id", true},
        {"default-producer", false},
        {"bytes-per-sec", true},
        {"records-per-sec", true}},
       kQuotaSetHelp},
      {{"quota", "delete"},
       Command::kQuotaDelete,
       {},
       {{"producer-id", true}, {"default-producer", false}},
       kQuotaDeleteHelp},
      {{"quota", "list"}, Command::kQuotaList, {}, {{"json", false}}, kQuotaListHelp},
      {{"topic", "list"}, Command::kTopicList, {}, {{"json", false}}, kTopicListHelp},
      {{"topic", "describe"},
       Command::kTopicDescribe,
       {"NAME"},
       {{"json", false}},
       kTopicDescribeHelp},
      {{"topic", "delete"}, Command::kTopicDelete, {"NAME"}, {}, kTopicDeleteHelp},
      {{"produce"},
       Command::kProduce,
       {"TOPIC"},
       {{"key", true},
        {"partition", true},
        {"spool-dir", true},
        {"spool-max-bytes", true},
        {"spool-full", true},
        {"drain-timeout", true}},
       kProduceHelp},
      {{"replay"},
       Command::kReplay,
       {"TOPIC"},
       {{"from-offset", true},
        {"from-beginning", false},
        {"from-time", true},
        {"partition", true},
        {"to-offset", true},
        {"max", true},
        {"follow", false}},
       kReplayHelp},
      {{"consume"},
       Command::kConsume,
       {"TOPIC"},
       {{"group", true},
        {"max", true},
        {"idle-timeout-ms", true},
        {"session-timeout-ms", true},
        {"auto-offset-reset", true}},
       kConsumeHelp},
      {{"group", "list"}, Command::kGroupList, {}, {{"json", false}}, kGroupListHelp},
      {{"group", "describe"},
       Command::kGroupDescribe,
       {"GROUP"},
       {{"json", false}},
       kGroupDescribeHelp},
      {{"group", "reset"},
       Command::kGroupReset,
       {"GROUP"},
       {{"topic", true},
        {"to-offset", true},
        {"to-earliest", false},
        {"to-latest", false},
        {"to-time", true},
        {"shift-by", true},
        {"partition", true},
        {"force", false},
        {"json", false}},
       kGroupResetHelp},
      {{"group", "delete"}, Command::kGroupDelete, {"GROUP"}, {{"force", false}}, kGroupDeleteHelp},
      {{"health"}, Command::kHealth, {}, {{"service", true}}, kHealthHelp},
      {{"spool", "status"}, Command::kSpoolStatus, {"DIR"}, {{"json", false}}, kSpoolStatusHelp},
      {{"spool", "drain"}, Command::kSpoolDrain, {"DIR"}, {}, kSpoolDrainHelp},
      {{"bench", "produce"},
       Command::kBench,
       {},
       BenchFlagSpecs(BenchMode::kProduce),
       BenchHelp(BenchMode::kProduce)},
      {{"bench", "consume"},
       Command::kBench,
       {},
       BenchFlagSpecs(BenchMode::kConsume),
       BenchHelp(BenchMode::kConsume)},
      {{"bench", "e2e"},
       Command::kBench,
       {},
       BenchFlagSpecs(BenchMode::kEndToEnd),
       BenchHelp(BenchMode::kEndToEnd)},
  };
  return *commands;
}

constexpr absl::string_view kTopicGroupHelp =
    R"(Usage: evlog topic (create|list|describe|delete) ...

  topic create NAME [--partitions=N] [--retention-ms=MS] [--retention-bytes=B]
  topic list [--json]
  topic describe NAME [--json]
  topic delete NAME
  topic alter NAME [--max-bytes-per-sec=SIZE|0] [--max-records-per-sec=N|0]
Run `evlog topic COMMAND --help` for details.
)";

constexpr absl::string_view kGroupGroupHelp =
    R"(Usage: evlog group (list|describe|reset|delete) ...

  group list [--json]
  group describe GROUP [--json]
  group reset GROUP --topic=T (--to-offset=N | --to-earliest | --to-latest | --to-time=T
                               | --shift-by=K) [--partition=P] [--force] [--json]
  group delete GROUP [--force]
Run `evlog group COMMAND --help` for details.
)";

std::string WithGlobalHelp(absl::string_view help) { return absl::StrCat(help, "\n", kGlobalHelp); }

std::string CommandName(const CommandSpec& spec) { return absl::StrJoin(spec.words, " "); }

absl::Status UsageError(absl::string_view message, absl::string_view help_command) {
  return absl::InvalidArgumentError(
      absl::StrCat(message, "; run `evlog ", help_command, "--help` for usage"));
}

// Parses a decimal integer flag value within [min, max].
template <typename Int>
absl::StatusOr<Int> ParseInt(absl::string_view flag, absl::string_view text, Int min, Int max,
                             absl::string_view help_command) {
  int64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || value < static_cast<int64_t>(min) ||
      value > static_cast<int64_t>(max)) {
    return UsageError(
        absl::StrCat("--", flag, "=", text, " is not a whole number from ", min, " to ", max),
        help_command);
  }
  return static_cast<Int>(value);
}

bool IsGlobalFlag(absl::string_view name) {
  return name == "server" || name == "timeout" || name == "help";
}

// Applies a global flag. `value` is empty for --help.
absl::Status ApplyGlobal(absl::string_view name, absl::string_view value, Invocation& inv,
                         bool& help, absl::string_view help_command) {
  if (name == "help") {
    help = true;
  } else if (name == "server") {
    if (value.empty() || absl::StrContains(value, ' ')) {
      return UsageError(absl::StrCat("--server wants HOST:PORT, not \"", value, "\""),
                        help_command);
    }
    inv.server = std::string(value);
  } else if (name == "timeout") {
    absl::Duration timeout;
    if (!absl::ParseDuration(value, &timeout) || timeout <= absl::ZeroDuration()) {
      return UsageError(absl::StrCat("--timeout wants a positive duration such as 10s or 500ms, "
                                     "not \"",
                                     value, "\""),
                        help_command);
    }
    inv.timeout = timeout;
  }
  return absl::OkStatus();
}

bool IsValidTopicName(absl::string_view name) {
  if (name.empty() || name.size() > 249) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

// Turns the flags and positionals given to `spec` into `inv`.
absl::Status Interpret(const CommandSpec& spec, const std::map<std::string, std::string>& flags,
                       const std::vector<std::string>& positionals, absl::Time now,
                       Invocation& inv) {
  const std::string help_command = CommandName(spec) + " ";
  if (positionals.size() != spec.positionals.size()) {
    if (positionals.size() < spec.positionals.size()) {
      return UsageError(absl::StrCat("`evlog ", CommandName(spec), "` needs ",
                                     absl::StrJoin(spec.positionals, " ")),
                        help_command);
    }
    return UsageError(absl::StrCat("unexpected argument \"", positionals[spec.positionals.size()],
                                   "\" for `evlog ", CommandName(spec), "`"),
                      help_command);
  }
  if (!positionals.empty() && spec.positionals[0] == "GROUP") {
    inv.group = positionals[0];
    if (!IsValidTopicName(inv.group)) {
      return UsageError(absl::StrCat("\"", inv.group,
                                     "\" is not a valid group name: use 1 to 249 of the "
                                     "characters A-Z a-z 0-9 . _ -"),
                        help_command);
    }
  } else if (!positionals.empty() && spec.positionals[0] == "DIR") {
    inv.spool_dir = positionals[0];
  } else if (!positionals.empty()) {
    inv.topic = positionals[0];
    if (!IsValidTopicName(inv.topic)) {
      return UsageError(absl::StrCat("\"", inv.topic,
                                     "\" is not a valid topic name: use 1 to 249 of the "
                                     "characters A-Z a-z 0-9 . _ -"),
                        help_command);
    }
  }
  auto get = [&flags](absl::string_view name) -> const std::string* {
    auto it = flags.find(std::string(name));
    return it == flags.end() ? nullptr : &it->second;
  };
  inv.json = get("json") != nullptr;
  inv.force = get("force") != nullptr;
  switch (spec.command) {
    case Command::kTopicCreate: {
      if (const std::string* v = get("partitions")) {
        auto n = ParseInt<int32_t>("partitions", *v, 1, 1 << 20, help_command);
        if (!n.ok()) return n.status();
        inv.topic_create.partitions = *n;
      }
      if (const std::string* v = get("retention-ms")) {
        auto n = ParseInt<int64_t>("retention-ms", *v, -1, INT64_MAX, help_command);
        if (!n.ok()) return n.status();
        inv.topic_create.retention_ms = *n;
      }
      if (const std::string* v = get("retention-bytes")) {
        auto n = ParseInt<int64_t>("retention-bytes", *v, -1, INT64_MAX, help_command);
        if (!n.ok()) return n.status();
        inv.topic_create.retention_bytes = *n;
      }
      if (auto s = ParseQuotaFlags(spec.command, flags, inv); !s.ok()) {
        return UsageError(s.message(), help_command);
      }
      break;
    }
    case Command::kTopicAlter:
    case Command::kQuotaSet:
    case Command::kQuotaDelete: {
      if (auto s = ParseQuotaFlags(spec.command, flags, inv); !s.ok()) {
        return UsageError(s.message(), help_command);
      }
      break;
    }
    case Command::kProduce: {
      if (const std::string* v = get("key")) inv.produce.key = *v;
      if (const std::string* v = get("partition")) {
        auto n = ParseInt<int32_t>("partition", *v, 0, INT32_MAX, help_command);
        if (!n.ok()) return n.status();
        inv.produce.partition = *n;
      }
      if (const std::string* v = get("spool-dir")) {
        if (v->empty()) return UsageError("--spool-dir needs a directory", help_command);
        inv.produce.spool_dir = *v;
      }
      const bool spooled = inv.produce.spool_dir.has_value();
      if (const std::string* v = get("spool-max-bytes")) {
        if (!spooled) return UsageError("--spool-max-bytes needs --spool-dir", help_command);
        absl::StatusOr<int64_t> n = ParseByteSize("spool-max-bytes", *v);
        if (n.ok() && *n <= 0) n = absl::InvalidArgumentError("--spool-max-bytes must be > 0");
        if (!n.ok()) return UsageError(n.status().message(), help_command);
        inv.produce.spool_max_bytes = *n;
      }
      if (const std::string* v = get("spool-full")) {
        if (!spooled) return UsageError("--spool-full needs --spool-dir", help_command);
        if (*v != "block" && *v != "fail") {
          return UsageError(absl::StrCat("--spool-full=", *v, " must be block or fail"),
                            help_command);
        }
        inv.produce.spool_full_fail = *v == "fail";
      }
      if (const std::string* v = get("drain-timeout")) {
        if (!spooled) return UsageError("--drain-timeout needs --spool-dir", help_command);
        absl::Duration d;
        if (!absl::ParseDuration(*v, &d) || d < absl::ZeroDuration()) {
          return UsageError(absl::StrCat("--drain-timeout=", *v,
                                         " is not a duration: use e.g. 10s, 500ms, 2m, 0s"),
                            help_command);
        }
        inv.produce.drain_timeout = d;
      }
      break;
    }

    case Command::kReplay: {
      ReplayArgs& r = inv.replay;
      int starts = 0;
      if (const std::string* v = get("from-offset")) {
        ++starts;
        auto n = ParseInt<int64_t>("from-offset", *v, 0, INT64_MAX, help_command);
        if (!n.ok()) return n.status();
        r.start = StartKind::kOffset;
        r.from_offset = *n;
      }
      if (get("from-beginning") != nullptr) {
        ++starts;
        r.start = StartKind::kBeginning;
      }
      if (const std::string* v = get("from-time")) {
        ++starts;
        auto t = ParseTimeMs(*v, now);
        if (!t.ok()) return UsageError(t.status().message(), help_command);
        r.start = StartKind::kTime;
        r.from_time_ms = *t;
      }
      if (starts != 1) {
        return UsageError(
            "`evlog replay` needs exactly one of --from-offset=N, --from-beginning and "
            "--from-time=T",
            help_command);
      }
      if (const std::string* v = get("partition")) {
        auto n = ParseInt<int32_t>("partition", *v, 0, INT32_MAX, help_command);
        if (!n.ok()) return n.status();
        r.partition = *n;
      }
      if (const std::string* v = get("to-offset")) {
        auto n = ParseInt<int64_t>("to-offset", *v, 0, INT64_MAX, help_command);
        if (!n.ok()) return n.status();
        r.to_offset = *n;
        if (r.start == StartKind::kOffset && *n < r.from_offset) {
          return UsageError(absl::StrCat("--to-offset=", *n, " is below --from-offset=",
                                         r.from_offset, "; nothing could be printed"),
                            help_command);
        }
      }
      if (const std::string* v = get("max")) {
        auto n = ParseInt<int64_t>("max", *v, 1, INT64_MAX, help_command);
        if (!n.ok()) return n.status();
        r.max = *n;
      }
      r.follow = get("follow") != nullptr;
      break;
    }
    case Command::kConsume: {
      ConsumeArgs& c = inv.consume;
      const std::string* group = get("group");
      if (group == nullptr) {
        return UsageError("`evlog consume` needs --group=G", help_command);
      }
      if (!IsValidTopicName(*group)) {
        return UsageError(absl::StrCat("--group=", *group,
                                       " is not a valid group name: use 1 to 249 of the "
                                       "characters A-Z a-z 0-9 . _ -"),
                          help_command);
      }
      c.group = *group;
      if (const std::string* v = get("max")) {
        auto n = ParseInt<int64_t>("max", *v, 1, INT64_MAX, help_command);
        if (!n.ok()) return n.status();
        c.max = *n;
      }
      if (const std::string* v = get("idle-timeout-ms")) {
        auto n = ParseInt<int64_t>("idle-timeout-ms", *v, 1, int64_t{1} << 40, help_command);
        if (!n.ok()) return n.status();
        c.idle_timeout_ms = *n;
      }
      if (const std::string* v = get("session-timeout-ms")) {
        auto n = ParseInt<int64_t>("session-timeout-ms", *v, 100, 600000, help_command);
        if (!n.ok()) return n.status();
        c.session_timeout_ms = *n;
      }
      if (const std::string* v = get("auto-offset-reset")) {
        if (*v != "earliest" && *v != "latest") {
          return UsageError(absl::StrCat("--auto-offset-reset=", *v, " must be earliest or latest"),
                            help_command);
        }
        c.auto_offset_reset_latest = *v == "latest";
      }
      break;
    }
    case Command::kGroupReset: {
      GroupResetArgs& r = inv.group_reset;
      const std::string* topic = get("topic");
      if (topic == nullptr) {
        return UsageError("`evlog group reset` needs --topic=T", help_command);
      }
      if (!IsValidTopicName(*topic)) {
        return UsageError(absl::StrCat("--topic=", *topic,
                                       " is not a valid topic name: use 1 to 249 of the "
                                       "characters A-Z a-z 0-9 . _ -"),
                          help_command);
      }
      inv.topic = *topic;
      int targets = 0;
      if (const std::string* v = get("to-offset")) {
        ++targets;
        auto n = ParseInt<int64_t>("to-offset", *v, 0, INT64_MAX, help_command);
        if (!n.ok()) return n.status();
        r.kind = ResetKind::kToOffset;
        r.value = *n;
      }
      if (get("to-earliest") != nullptr) {
        ++targets;
        r.kind = ResetKind::kToEarliest;
      }
      if (get("to-latest") != nullptr) {
        ++targets;
        r.kind = ResetKind::kToLatest;
      }
      if (const std::string* v = get("to-time")) {
        ++targets;
        auto t = ParseTimeMs(*v, now, "to-time");
        if (!t.ok()) return UsageError(t.status().message(), help_command);
        r.kind = ResetKind::kToTime;
        r.value = *t;
      }
      if (const std::string* v = get("shift-by")) {
        ++targets;
        auto n = ParseInt<int64_t>("shift-by", *v, INT64_MIN, INT64_MAX, help_command);
        if (!n.ok()) return n.status();
        r.kind = ResetKind::kShiftBy;
        r.value = *n;
      }
      if (targets != 1) {
        return UsageError(
            "`evlog group reset` needs exactly one of --to-offset=N, --to-earliest, "
            "--to-latest, --to-time=T and --shift-by=K",
            help_command);
      }
      if (const std::string* v = get("partition")) {
        auto n = ParseInt<int32_t>("partition", *v, 0, INT32_MAX, help_command);
        if (!n.ok()) return n.status();
        r.partition = *n;
      }
      break;
    }
    case Command::kHealth: {
      if (const std::string* v = get("service")) inv.health_service = *v;
      break;
    }
    case Command::kBench: {
      inv.bench.mode = spec.words[1] == "produce"   ? BenchMode::kProduce
                       : spec.words[1] == "consume" ? BenchMode::kConsume
                                                    : BenchMode::kEndToEnd;
      if (auto s = ParseBenchArgs(flags, inv.bench); !s.ok()) {
        return UsageError(s.message(), help_command);
      }
      break;
    }
    default:
      break;
  }
  return absl::OkStatus();
}

}  // namespace

std::string ToolUsage() {
  return WithGlobalHelp(R"(Usage: evlog [--server=HOST:PORT] [--timeout=DURATION] COMMAND ...

evlog is the command line of the evlog event-log service (evlogd).

Commands:
  topic create NAME [--partitions=N] [--retention-ms=MS] [--retention-bytes=B]
  topic list [--json]
  topic describe NAME [--json]
  topic delete NAME
  topic alter NAME [--max-bytes-per-sec=SIZE|0] [--max-records-per-sec=N|0]
      changes the topic's rate quota (topic create takes the same flags)
  quota set (--producer-id=N | --default-producer) [--bytes-per-sec=SIZE] [--records-per-sec=N]
  quota delete (--producer-id=N | --default-producer)
  quota list [--json]
      producer rate quotas; list shows every quota in force
  produce TOPIC [--key=K] [--partition=P]
      reads stdin, one event per line; exits 0 once every line is acknowledged
  replay TOPIC (--from-offset=N | --from-beginning | --from-time=T) [--partition=P]
         [--to-offset=M] [--max=N] [--follow]
      prints records as JSON lines
  consume TOPIC --group=G [--max=N] [--idle-timeout-ms=MS] [--session-timeout-ms=MS]
          [--auto-offset-reset=earliest|latest]
      joins consumer group G, prints records as JSON lines, commits what it printed
  group list [--json]
  group describe GROUP [--json]
      per partition: committed offset, end offset, lag, owner, last commit; members
  group reset GROUP --topic=T (--to-offset=N | --to-earliest | --to-latest | --to-time=T
                               | --shift-by=K) [--partition=P] [--force] [--json]
  group delete GROUP [--force]
  health [--service=NAME]
      exits 0 if the server's gRPC health service says SERVING
  produce TOPIC ... --spool-dir=DIR [--spool-max-bytes=SIZE] [--spool-full=block|fail]
          [--drain-timeout=DURATION]
      produces through a durable local spool: goes on while the server is unreachable
  spool status DIR [--json]
      what a spool holds: pending events per partition, producer id, dead letters
  spool drain DIR
      delivers a spool's pending events; exits 0 once it is empty
  bench produce --topic=T [--events=N] [--size=B] [--producers=C] [--rate=R] [--json] ...
  bench consume --topic=T --group=G [--events=N] [--json]
  bench e2e --topic=T [--rate=R] [--json] ...
      load generators: events/s, MB/s and latency percentiles (`evlog bench --help`)
  help [COMMAND]
Run `evlog COMMAND --help` for a command's flags and output.

Errors go to stderr as `evlog: STATUS_NAME: what went wrong`. Exit status: 0 on success,
2 for a usage error, 1 for anything else.
)");
}

absl::StatusOr<int64_t> ParseTimeMs(absl::string_view text, absl::Time now,
                                    absl::string_view flag) {
  int64_t ms = 0;
  if (!text.empty() && absl::ascii_isdigit(static_cast<unsigned char>(text[0])) &&
      absl::SimpleAtoi(text, &ms)) {
    return ms;
  }
  absl::Duration ago;
  if (absl::StartsWith(text, "-") && absl::ParseDuration(text, &ago)) {
    return absl::ToUnixMillis(now + ago);
  }
  absl::Time t;
  std::string error;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &error)) return absl::ToUnixMillis(t);
  return absl::InvalidArgumentError(
      absl::StrCat("--", flag, "=", text,
                   " is not a time: give milliseconds since the epoch (1700000000000), RFC 3339 "
                   "(2024-05-01T12:00:00Z) or a time ago (-15m)"));
}

absl::StatusOr<Invocation> ParseCommandLine(const std::vector<std::string>& args, absl::Time now) {
  Invocation inv;
  bool help = false;
  size_t i = 0;

  // Splits "--name=value" / "--name value"; `takes_value` decides whether the next argument is
  // consumed. Returns the value, or an error if one is missing.
  auto flag_value = [&args, &i](absl::string_view arg, absl::string_view name, bool takes_value,
                                absl::string_view help_command) -> absl::StatusOr<std::string> {
    const size_t eq = arg.find('=');
    if (!takes_value) {
      if (eq != absl::string_view::npos) {
        return UsageError(absl::StrCat("--", name, " takes no value"), help_command);
      }
      return std::string();
    }
    if (eq != absl::string_view::npos) return std::string(arg.substr(eq + 1));
    if (i + 1 >= args.size()) {
      return UsageError(absl::StrCat("--", name, " needs a value"), help_command);
    }
    return args[++i];
  };
  auto flag_name = [](absl::string_view arg) {
    if (arg == "-h") return absl::string_view("help");
    arg.remove_prefix(2);
    return arg.substr(0, arg.find('='));
  };
  auto is_flag = [](absl::string_view arg) {
    return arg == "-h" || (absl::StartsWith(arg, "--") && arg.size() > 2);
  };

  // Global flags before the command.
  for (; i < args.size() && is_flag(args[i]); ++i) {
    const absl::string_view name = flag_name(args[i]);
    if (!IsGlobalFlag(name)) {
      return UsageError(absl::StrCat("unknown flag --", name, " before the command"), "");
    }
    auto value = flag_value(args[i], name, name != "help", "");
    if (!value.ok()) return value.status();
    if (auto s = ApplyGlobal(name, *value, inv, help, ""); !s.ok()) return s;
  }
  if (i == args.size()) {
    if (help) {
      inv.command = Command::kHelp;
      inv.help_text = ToolUsage();
      return inv;
    }
    return UsageError("no command given", "");
  }

  // `help WORDS...` is `WORDS... --help`.
  std::vector<std::string> words(args.begin() + i, args.end());
  if (words[0] == "help") {
    words.erase(words.begin());
    help = true;
    if (words.empty()) {
      inv.command = Command::kHelp;
      inv.help_text = ToolUsage();
      return inv;
    }
  }

  // Find the leaf command named by the leading words.
  const CommandSpec* spec = nullptr;
  size_t used = 0;
  for (const CommandSpec& candidate : Commands()) {
    if (candidate.words.size() > words.size()) continue;
    bool match = true;
    for (size_t w = 0; w < candidate.words.size(); ++w) {
      if (words[w] != candidate.words[w]) match = false;
    }
    if (match) {
      spec = &candidate;
      used = candidate.words.size();
      break;
    }
  }
  if (spec == nullptr && words[0] == "bench") {
    const bool wants_help =
        help || (words.size() > 1 && (words[1] == "--help" || words[1] == "-h"));
    if (wants_help && (words.size() == 1 || is_flag(words[1]))) {
      inv.command = Command::kHelp;
      inv.help_text = WithGlobalHelp(BenchGroupHelp());
      return inv;
    }
    return UsageError(words.size() == 1
                          ? std::string("`evlog bench` needs a mode: produce, consume or e2e")
                          : absl::StrCat("unknown command `evlog bench ", words[1],
                                         "`: use produce, consume or e2e"),
                      "bench ");
  }
  if (spec == nullptr && words[0] == "quota") {
    const bool wants_help =
        help || (words.size() > 1 && (words[1] == "--help" || words[1] == "-h"));
    if (wants_help && (words.size() == 1 || is_flag(words[1]))) {
      inv.command = Command::kHelp;
      inv.help_text = WithGlobalHelp(kQuotaGroupHelp);
      return inv;
    }
    return UsageError(
        words.size() == 1
            ? std::string("`evlog quota` needs a subcommand: set, delete or list")
            : absl::StrCat("unknown command `evlog quota ", words[1], "`: use set, delete or list"),
        "quota ");
  }
  if (spec == nullptr && words[0] == "spool") {
    const bool wants_help =
        help || (words.size() > 1 && (words[1] == "--help" || words[1] == "-h"));
    if (wants_help && (words.size() == 1 || is_flag(words[1]))) {
      inv.command = Command::kHelp;
      inv.help_text = WithGlobalHelp(
          "Usage: evlog spool (status|drain) DIR ...\n\n"
          "  spool status DIR [--json]   what the spool in DIR holds (no server needed)\n"
          "  spool drain DIR             deliver its pending events; exit 0 once it is empty\n"
          "Run `evlog spool COMMAND --help` for details.\n");
      return inv;
    }
    return UsageError(
        words.size() == 1
            ? std::string("`evlog spool` needs a subcommand: status or drain")
            : absl::StrCat("unknown command `evlog spool ", words[1], "`: use status or drain"),
        "spool ");
  }
  if (spec == nullptr) {
    if (words[0] == "topic" || words[0] == "group") {
      const bool topic = words[0] == "topic";
      const absl::string_view subcommands =
          topic ? "create, list, describe, alter or delete" : "list, describe, reset or delete";
      const std::string help_command = words[0] + " ";
      const bool wants_help = help || words.size() == 1 || words[1] == "--help" || words[1] == "-h";
      if (wants_help && (words.size() == 1 || is_flag(words[1]))) {
        if (words.size() == 1 && !help) {
          return UsageError(
              absl::StrCat("`evlog ", words[0], "` needs a subcommand: ", subcommands),
              help_command);
        }
        inv.command = Command::kHelp;
        inv.help_text = WithGlobalHelp(topic ? kTopicGroupHelp : kGroupGroupHelp);
        return inv;
      }
      return UsageError(
          absl::StrCat("unknown command `evlog ", words[0], " ", words[1], "`: use ", subcommands),
          help_command);
    }
    return UsageError(absl::StrCat("unknown command \"", words[0], "\""), "");
  }

  const std::string help_command = CommandName(*spec) + " ";
  std::map<std::string, std::string> flags;
  std::vector<std::string> positionals;
  const std::vector<std::string> rest(words.begin() + used, words.end());
  bool flags_done = false;
  for (size_t j = 0; j < rest.size(); ++j) {
    const std::string& arg = rest[j];
    if (flags_done || !is_flag(arg)) {
      if (arg == "--" && !flags_done) {
        flags_done = true;
        continue;
      }
      positionals.push_back(arg);
      continue;
    }
    const absl::string_view name = flag_name(arg);
    bool known_global = IsGlobalFlag(name);
    const FlagSpec* flag = nullptr;
    for (const FlagSpec& f : spec->flags) {
      if (f.name == name) flag = &f;
    }
    if (!known_global && flag == nullptr) {
      return UsageError(
          absl::StrCat("unknown flag --", name, " for `evlog ", CommandName(*spec), "`"),
          help_command);
    }
    const bool takes_value = known_global ? name != "help" : flag->takes_value;
    std::string value;
    const size_t eq = arg.find('=');
    if (!takes_value) {
      if (eq != std::string::npos) {
        return UsageError(absl::StrCat("--", name, " takes no value"), help_command);
      }
    } else if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (j + 1 < rest.size()) {
      value = rest[++j];
    } else {
      return UsageError(absl::StrCat("--", name, " needs a value"), help_command);
    }
    if (known_global) {
      if (auto s = ApplyGlobal(name, value, inv, help, help_command); !s.ok()) return s;
      continue;
    }
    if (!flags.emplace(std::string(name), value).second) {
      return UsageError(absl::StrCat("--", name, " is given twice"), help_command);
    }
  }
  if (help) {
    inv.command = Command::kHelp;
    inv.help_text = WithGlobalHelp(spec->help);
    return inv;
  }
  inv.command = spec->command;
  if (auto s = Interpret(*spec, flags, positionals, now, inv); !s.ok()) return s;
  return inv;
}

}  // namespace evlog::cli
