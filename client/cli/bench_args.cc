#include "client/cli/bench_args.h"

#include <cmath>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"

namespace evlog::cli {
namespace {

constexpr int64_t kMaxCount = int64_t{1} << 62;

constexpr absl::string_view kBenchProduceHelp =
    R"(Usage: evlog bench produce --topic=T [--events=N] [--size=B] [--producers=C]
                           [--partitions=P] [--batch-bytes=B] [--linger-ms=MS]
                           [--in-flight=K] [--buffer-bytes=B] [--rate=R] [--duration=D]
                           [--json]

Sends N events of B bytes from C concurrent producers and measures how fast the server
acknowledges them (acknowledged = durably stored under the server's --fsync policy).
Producer i writes to partition i mod P. The topic is created with P partitions if it does not
exist (an existing topic is used as it is).
  --topic=T          the topic (required)
  --events=N         events in total, all producers together (default 1000000; 1M, 250k work)
  --size=B           value bytes per event (default 100; 1KiB works); keys are empty
  --producers=C      concurrent producers, each with its own thread, Producer and stream
                     (default 1)
  --partitions=P     partitions of a topic the bench creates (default: C)
  --batch-bytes=B    a batch is sent once it holds about B bytes (default: the library's,
                     1 MiB, capped by the server's --max-batch-bytes)
  --linger-ms=MS     a batch that is not full is sent MS ms after its first event (default:
                     the library's, 5 ms); 0 for the lowest latency at low rates
  --in-flight=K      batches per producer awaiting acknowledgement (default: the library's, 8)
  --buffer-bytes=B   Send blocks while a producer holds B bytes not yet acknowledged (default:
                     the library's, 64 MiB). At full speed the latency measured is mostly the
                     time spent in this buffer: a smaller one shows the server's latency
  --rate=R           send at most R events/s in total (default 0: as fast as acknowledged);
                     for latency at a given load. Each producer keeps an evenly spaced
                     schedule of R/C events/s (open loop: events that fall due during a stall
                     go out at once after it), waking at most once per millisecond and sending
                     the events then due; producers are staggered across that millisecond
  --duration=D       stop sending after D (e.g. 10s) even if fewer than N events were sent
  --json             print one JSON object instead of the summary
Output (stdout): a summary, or with --json one object
  {"mode":"produce","topic":"T","events":N,"bytes":B,"seconds":S,"events_per_s":E,
   "mb_per_s":M,"p50_ms":L,"p99_ms":L,"p999_ms":L,"max_ms":L,"latency":"ack_per_event",
   "errors":K,"producers":C,"size":B,"partitions":P,"rate":R,"batches":NB,
   "schedule_lag_p99_ms":G,"schedule_lag_max_ms":G,"cpu_seconds":U}
bytes = events x size (values only); MB = 10^6 bytes. Latencies are per event: from the
Send call to its acknowledgement (so they include the time an event waits in the producer's
batch and buffer). errors = events that failed. Before the clock starts, each producer sends
one event and waits for its acknowledgement (a warm-up: connection, stream, producer id); it
counts in events, not in the latencies or seconds. seconds = first timed Send to last
acknowledgement. schedule_lag = how late the Send calls were against the --rate schedule
(null without --rate): up to 1 ms is the pacing; more means the bench could not keep the rate
(Send blocked on a full buffer, or no CPU), and the latencies then understate the wait.
cpu_seconds = CPU time (user + system) of this bench process over `seconds`: with the server
on the same host, cpu_seconds / seconds is what the load generator took from it.
A progress bar goes to stderr when stderr is a terminal. Exits 1 if any event failed.
)";

constexpr absl::string_view kBenchConsumeHelp =
    R"(Usage: evlog bench consume --topic=T --group=G [--events=N] [--json]

Joins consumer group G for topic T and reads until it has read the backlog as it was at the
start (every partition's end offset minus the group's position), or N events, then commits,
leaves the group and reports the read rate. Use a new group name to read everything stored.
  --topic=T      the topic (required)
  --group=G      the consumer group (required)
  --events=N     stop after N events (default: the backlog at the start)
  --json         print one JSON object instead of the summary
Output (stdout): as `evlog bench produce`, with "mode":"consume" and "latency":"none"
(p50_ms, p99_ms, p999_ms, the schedule lag and cpu_seconds are null: a backlog read has no
per-event latency). bytes counts
value bytes read. seconds = from joining the group to the last event read.
)";

constexpr absl::string_view kBenchEndToEndHelp =
    R"(Usage: evlog bench e2e --topic=T [--events=N] [--size=B] [--producers=C] [--rate=R]
                       [--partitions=P] [--group=G] [--batch-bytes=B] [--linger-ms=MS]
                       [--in-flight=K] [--buffer-bytes=B] [--duration=D] [--json]

End-to-end latency: a consumer group member reads the topic while C producers send N events
at R events/s in total; each event carries its send time (the first 8 bytes of its value), and
the latency of an event is from its Send call to the moment Poll hands it to the consumer.
  --topic=T          the topic (required; created with P partitions if absent)
  --events=N         events in total (default 100000)
  --rate=R           events/s over all producers (default 10000; 0: unlimited, which measures
                     queueing more than latency)
  --size=B           value bytes, at least 8 (default 100)
  --group=G          the consumer group (default: evlog-bench-e2e-PID, new, reading from the
                     end of the topic)
  --producers, --partitions, --batch-bytes, --linger-ms, --in-flight, --buffer-bytes,
  --duration, --json
                     as for `evlog bench produce` (--linger-ms defaults to 0 here)
Output (stdout): as `evlog bench produce`, with "mode":"e2e" and "latency":"end_to_end";
events counts events received. Exits 1 if events failed or were not all received within
--timeout after the last was acknowledged.
)";

constexpr absl::string_view kBenchGroupHelp =
    R"(Usage: evlog bench (produce|consume|e2e) ...

Load generators that report throughput and latency, like kafka-producer-perf-test,
redis-benchmark or nats bench:
  bench produce --topic=T [--events=N] [--size=B] [--producers=C] [--rate=R] ...
      acknowledged (durably stored) events/s, MB/s and per-event ack latency p50/p99/p999
  bench consume --topic=T --group=G [--events=N]
      a consumer group reading a backlog: events/s and MB/s
  bench e2e --topic=T [--rate=R] ...
      latency from the producer's Send to the consumer's Poll, p50/p99/p999
Each prints a summary, or one JSON object with --json; a progress bar goes to stderr when it
is a terminal. Run `evlog bench MODE --help` for details; bench/README.md compares evlog
with the disk, Redis Streams and NATS JetStream.
)";

absl::Status Bad(absl::string_view flag, absl::string_view text, absl::string_view wants) {
  return absl::InvalidArgumentError(absl::StrCat("--", flag, "=", text, " is not ", wants));
}

bool ValidName(absl::string_view name) {
  if (name.empty() || name.size() > 249) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

const std::vector<BenchFlag>& BenchFlags(BenchMode mode) {
  static const auto* produce = new std::vector<BenchFlag>{
      {"topic", true},        {"events", true},      {"size", true},      {"producers", true},
      {"partitions", true},   {"batch-bytes", true}, {"linger-ms", true}, {"in-flight", true},
      {"buffer-bytes", true}, {"rate", true},        {"duration", true},  {"json", false}};
  static const auto* consume = new std::vector<BenchFlag>{
      {"topic", true}, {"group", true}, {"events", true}, {"json", false}};
  static const auto* e2e = [] {
    auto* flags = new std::vector<BenchFlag>(*produce);
    flags->push_back({"group", true});
    return flags;
  }();
  switch (mode) {
    case BenchMode::kProduce:
      return *produce;
    case BenchMode::kConsume:
      return *consume;
    case BenchMode::kEndToEnd:
      break;
  }
  return *e2e;
}

absl::Status ParseCount(absl::string_view flag, absl::string_view text, int64_t* out) {
  std::string digits = absl::StrReplaceAll(text, {{"_", ""}, {",", ""}});
  double scale = 1;
  if (!digits.empty()) {
    switch (digits.back()) {
      case 'k':
      case 'K':
        scale = 1e3;
        break;
      case 'M':
        scale = 1e6;
        break;
      case 'G':
        scale = 1e9;
        break;
      default:
        break;
    }
    if (scale != 1) digits.pop_back();
  }
  int64_t whole = 0;
  if (scale == 1 && absl::SimpleAtoi(digits, &whole)) {
    if (whole < 0 || whole > kMaxCount) return Bad(flag, text, "a count from 0 to 2^62");
    *out = whole;
    return absl::OkStatus();
  }
  double value = 0;
  if (scale == 1 || !absl::SimpleAtod(digits, &value) || !std::isfinite(value) || value < 0 ||
      value * scale > static_cast<double>(kMaxCount)) {
    return Bad(flag, text, "a count such as 1000000, 1M, 250k or 1_000_000");
  }
  *out = static_cast<int64_t>(std::llround(value * scale));
  return absl::OkStatus();
}

absl::Status ParseBytes(absl::string_view flag, absl::string_view text, int64_t* out) {
  static const std::pair<absl::string_view, int64_t> kUnits[] = {
      {"KiB", 1024}, {"MiB", 1 << 20}, {"GiB", int64_t{1} << 30}, {"K", 1024},
      {"k", 1024},   {"M", 1 << 20},   {"G", int64_t{1} << 30},   {"B", 1}};
  absl::string_view number = text;
  int64_t unit = 1;
  for (const auto& [suffix, factor] : kUnits) {
    if (absl::EndsWith(number, suffix)) {
      number.remove_suffix(suffix.size());
      unit = factor;
      break;
    }
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(number, &n) || n < 0 || n > (int64_t{1} << 40) / unit) {
    return Bad(flag, text, "a size in bytes such as 100, 1KiB, 64k or 1MiB");
  }
  *out = n * unit;
  return absl::OkStatus();
}

absl::Status ParseBenchArgs(const std::map<std::string, std::string>& flags, BenchArgs& args) {
  auto get = [&flags](absl::string_view name) -> const std::string* {
    auto it = flags.find(std::string(name));
    return it == flags.end() ? nullptr : &it->second;
  };
  const std::string* topic = get("topic");
  if (topic == nullptr) return absl::InvalidArgumentError("`evlog bench` needs --topic=T");
  if (!ValidName(*topic)) {
    return Bad("topic", *topic, "a valid topic name (1 to 249 of A-Z a-z 0-9 . _ -)");
  }
  args.topic = *topic;
  if (const std::string* g = get("group")) {
    if (!ValidName(*g)) {
      return Bad("group", *g, "a valid group name (1 to 249 of A-Z a-z 0-9 . _ -)");
    }
    args.group = *g;
  } else if (args.mode == BenchMode::kConsume) {
    return absl::InvalidArgumentError("`evlog bench consume` needs --group=G");
  }
  args.json = get("json") != nullptr;

  if (const std::string* v = get("events")) {
    int64_t n = 0;
    if (auto s = ParseCount("events", *v, &n); !s.ok()) return s;
    if (n < 1) return Bad("events", *v, "at least 1");
    args.events = n;
  }
  if (args.mode == BenchMode::kConsume) return absl::OkStatus();

  if (const std::string* v = get("size")) {
    int64_t n = 0;
    if (auto s = ParseBytes("size", *v, &n); !s.ok()) return s;
    const int64_t min = args.mode == BenchMode::kEndToEnd ? 8 : 0;
    if (n < min || n > (64 << 20)) {
      return Bad("size", *v,
                 absl::StrCat("a size from ", min, " bytes to 64MiB",
                              min > 0 ? " (e2e puts an 8-byte send time in each value)" : ""));
    }
    args.size = static_cast<int32_t>(n);
  }
  auto small_count = [&](absl::string_view name, int32_t min, int32_t max,
                         int32_t* out) -> absl::Status {
    const std::string* v = get(name);
    if (v == nullptr) return absl::OkStatus();
    int64_t n = 0;
    if (auto s = ParseCount(name, *v, &n); !s.ok()) return s;
    if (n < min || n > max) return Bad(name, *v, absl::StrCat("a number from ", min, " to ", max));
    *out = static_cast<int32_t>(n);
    return absl::OkStatus();
  };
  if (auto s = small_count("producers", 1, 1024, &args.producers); !s.ok()) return s;
  if (auto s = small_count("partitions", 1, 4096, &args.partitions); !s.ok()) return s;
  int32_t in_flight = 0;
  if (auto s = small_count("in-flight", 1, 1024, &in_flight); !s.ok()) return s;
  if (in_flight > 0) args.in_flight = in_flight;
  if (const std::string* v = get("batch-bytes")) {
    int64_t n = 0;
    if (auto s = ParseBytes("batch-bytes", *v, &n); !s.ok()) return s;
    if (n < 1) return Bad("batch-bytes", *v, "at least 1 byte");
    args.batch_bytes = n;
  }
  if (const std::string* v = get("buffer-bytes")) {
    int64_t n = 0;
    if (auto s = ParseBytes("buffer-bytes", *v, &n); !s.ok()) return s;
    if (n < 1) return Bad("buffer-bytes", *v, "at least 1 byte");
    args.buffer_bytes = n;
  }
  if (const std::string* v = get("linger-ms")) {
    int64_t n = 0;
    if (!absl::SimpleAtoi(*v, &n) || n < 0 || n > 60000) {
      return Bad("linger-ms", *v, "a whole number of milliseconds from 0 to 60000");
    }
    args.linger_ms = n;
  }
  if (const std::string* v = get("rate")) {
    int64_t n = 0;
    if (auto s = ParseCount("rate", *v, &n); !s.ok()) return s;
    args.rate = static_cast<double>(n);
  } else if (args.mode == BenchMode::kEndToEnd) {
    args.rate = 10000;
  }
  if (const std::string* v = get("duration")) {
    absl::Duration d;
    if (!absl::ParseDuration(*v, &d) || d <= absl::ZeroDuration()) {
      return Bad("duration", *v, "a positive duration such as 10s, 1m or 500ms");
    }
    args.duration_ms = absl::ToInt64Milliseconds(d);
  }
  return absl::OkStatus();
}

absl::string_view BenchHelp(BenchMode mode) {
  switch (mode) {
    case BenchMode::kProduce:
      return kBenchProduceHelp;
    case BenchMode::kConsume:
      return kBenchConsumeHelp;
    case BenchMode::kEndToEnd:
      break;
  }
  return kBenchEndToEndHelp;
}

absl::string_view BenchGroupHelp() { return kBenchGroupHelp; }

}  // namespace evlog::cli
