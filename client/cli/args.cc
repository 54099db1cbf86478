#include "client/cli/args.h"

#include <map>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

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
                       for produce and replay streams, the longest wait for any answer
  --help, -h           show help
)";

constexpr absl::string_view kTopicCreateHelp =
    R"(Usage: evlog topic create NAME [--partitions=N] [--retention-ms=MS] [--retention-bytes=B]

Creates topic NAME ([A-Za-z0-9._-]{1,249}) with N partitions (default 1).
  --partitions=N         number of partitions, fixed for the topic's life (default 1)
  --retention-ms=MS      keep records at least MS milliseconds; -1 keeps them forever (default)
  --retention-bytes=B    keep at most about B bytes per partition; -1: no limit (default)
Prints `created topic NAME` to stdout. Fails with ALREADY_EXISTS if the name is taken.
)";

constexpr absl::string_view kTopicListHelp = R"(Usage: evlog topic list [--json]

Prints the topics, one name per line, sorted. With --json prints one JSON array of names.
)";

constexpr absl::string_view kTopicDescribeHelp = R"(Usage: evlog topic describe NAME [--json]

Prints the topic's configuration and, per partition, its start offset (lowest readable),
end offset (next to be written) and stored bytes. With --json prints one JSON object:
  {"name":...,"partitions":N,"retention_ms":MS,"retention_bytes":B,"created_ms":T,
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

constexpr absl::string_view kHealthHelp = R"(Usage: evlog health [--service=NAME]

Asks the server's standard gRPC health service (grpc.health.v1.Health/Check) whether it is
serving. Exits 0 and prints SERVING when it is; otherwise prints the status and exits 1.
  --service=NAME   the service to ask about (default: "", the whole server)
)";

const std::vector<CommandSpec>& Commands() {
  static const auto* commands = new std::vector<CommandSpec>{
      {{"topic", "create"},
       Command::kTopicCreate,
       {"NAME"},
       {{"partitions", true}, {"retention-ms", true}, {"retention-bytes", true}},
       kTopicCreateHelp},
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
       {{"key", true}, {"partition", true}},
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
      {{"health"}, Command::kHealth, {}, {{"service", true}}, kHealthHelp},
  };
  return *commands;
}

constexpr absl::string_view kTopicGroupHelp =
    R"(Usage: evlog topic (create|list|describe|delete) ...

  topic create NAME [--partitions=N] [--retention-ms=MS] [--retention-bytes=B]
  topic list [--json]
  topic describe NAME [--json]
  topic delete NAME
Run `evlog topic COMMAND --help` for details.
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
  if (!positionals.empty()) {
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
      break;
    }
    case Command::kProduce: {
      if (const std::string* v = get("key")) inv.produce.key = *v;
      if (const std::string* v = get("partition")) {
        auto n = ParseInt<int32_t>("partition", *v, 0, INT32_MAX, help_command);
        if (!n.ok()) return n.status();
        inv.produce.partition = *n;
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
    case Command::kHealth: {
      if (const std::string* v = get("service")) inv.health_service = *v;
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
  produce TOPIC [--key=K] [--partition=P]
      reads stdin, one event per line; exits 0 once every line is acknowledged
  replay TOPIC (--from-offset=N | --from-beginning | --from-time=T) [--partition=P]
         [--to-offset=M] [--max=N] [--follow]
      prints records as JSON lines
  health [--service=NAME]
      exits 0 if the server's gRPC health service says SERVING
  help [COMMAND]
Run `evlog COMMAND --help` for a command's flags and output.

Errors go to stderr as `evlog: STATUS_NAME: what went wrong`. Exit status: 0 on success,
2 for a usage error, 1 for anything else.
)");
}

absl::StatusOr<int64_t> ParseTimeMs(absl::string_view text, absl::Time now) {
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
      absl::StrCat("--from-time=", text,
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

  if (words[0] == "consume" || words[0] == "group") {
    return absl::UnimplementedError(absl::StrCat(
        "`evlog ", words[0],
        "` comes with consumer groups in a later version; this one has topic, produce, replay "
        "and health"));
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
  if (spec == nullptr) {
    if (words[0] == "topic") {
      const bool wants_help = help || words.size() == 1 || words[1] == "--help" || words[1] == "-h";
      if (wants_help && (words.size() == 1 || is_flag(words[1]))) {
        if (words.size() == 1 && !help) {
          return UsageError("`evlog topic` needs a subcommand: create, list, describe or delete",
                            "topic ");
        }
        inv.command = Command::kHelp;
        inv.help_text = WithGlobalHelp(kTopicGroupHelp);
        return inv;
      }
      return UsageError(absl::StrCat("unknown command `evlog topic ", words[1],
                                     "`: use create, list, describe or delete"),
                        "topic ");
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
