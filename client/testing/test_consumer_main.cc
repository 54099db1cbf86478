// evlog_test_consumer: a group member for cross-process tests, built on the client library's
// Consumer with auto-commit. It says what it does on stdout, one JSON object per line:
//
//   {"event":"assignment","member":"m","generation":3,"partitions":[0,4,8]}
//       after every change of its assignment (the partitions of --topic it reads now; revoked
//       ones are stopped before this line is written)
//   {"event":"committed","partition":4,"offset":120}
//       after a Poll whose auto-commit moved a committed offset (the commit is durable
//       before the line is written)
//   {"topic":"t","partition":4,"offset":120,...}
//       each record handed to it, in the `evlog replay` format, written and flushed before
//       the next Poll commits it
//   {"event":"stalled"}
//       with --stall-after=N: after N records it stops polling (so it commits nothing more)
//       but keeps heartbeating, like a consumer stuck in processing
//
// Usage: evlog_test_consumer --server=HOST:PORT --group=G --topic=T
//            [--session-timeout-ms=MS] [--max-per-poll=N] [--stall-after=N]
// Runs until SIGTERM/SIGINT, then closes (commits, leaves) and exits 0; exits 1 on errors.
#include <csignal>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/consumer.h"
#include "client/json_format.h"

namespace {

volatile std::sig_atomic_t g_stop = 0;
extern "C" void OnStop(int) { g_stop = 1; }

absl::Mutex g_out_mu;

void Emit(const std::string& lines) {
  absl::MutexLock l(&g_out_mu);
  std::fwrite(lines.data(), 1, lines.size(), stdout);
  std::fflush(stdout);
}

bool Flag(const std::string& arg, const char* name, std::string* value) {
  const std::string prefix = absl::StrCat("--", name, "=");
  if (!absl::StartsWith(arg, prefix)) return false;
  *value = arg.substr(prefix.size());
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string server, group, topic, v;
  int64_t session_ms = 10000, max_per_poll = 500, stall_after = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (Flag(arg, "server", &server) || Flag(arg, "group", &group) || Flag(arg, "topic", &topic)) {
      continue;
    }
    if ((Flag(arg, "session-timeout-ms", &v) && absl::SimpleAtoi(v, &session_ms)) ||
        (Flag(arg, "max-per-poll", &v) && absl::SimpleAtoi(v, &max_per_poll)) ||
        (Flag(arg, "stall-after", &v) && absl::SimpleAtoi(v, &stall_after))) {
      continue;
    }
    std::fprintf(stderr, "evlog_test_consumer: bad argument %s\n", arg.c_str());
    return 2;
  }
  std::signal(SIGTERM, OnStop);
  std::signal(SIGINT, OnStop);

  evlog::client::ConsumerOptions options;
  options.group = group;
  options.topics = {topic};
  options.session_timeout = absl::Milliseconds(session_ms);
  options.call_timeout = absl::Seconds(10);
  options.reader.heartbeat = absl::Milliseconds(500);
  options.on_assignment = [&topic](const evlog::client::AssignmentChange& change) {
    std::vector<int32_t> partitions;
    for (const auto& tp : change.assignment) {
      if (tp.topic == topic) partitions.push_back(tp.partition);
    }
    Emit(absl::StrCat(R"({"event":"assignment","member":")", change.member_id, R"(","generation":)",
                      change.generation, R"(,"partitions":[)", absl::StrJoin(partitions, ","),
                      "]}\n"));
  };
  auto consumer = evlog::client::Consumer::Create(server, options);
  if (!consumer.ok()) {
    std::fprintf(stderr, "evlog_test_consumer: %s\n", consumer.status().ToString().c_str());
    return 1;
  }

  std::map<evlog::client::TopicPartition, int64_t> committed;
  int64_t printed = 0;
  while (!g_stop) {
    auto records =
        (*consumer)->Poll(static_cast<size_t>(max_per_poll), absl::Now() + absl::Milliseconds(100));
    if (!records.ok()) {
      std::fprintf(stderr, "evlog_test_consumer: %s\n", records.status().ToString().c_str());
      return 1;
    }
    std::string out;
    for (const auto& [tp, offset] : (*consumer)->CommittedOffsets()) {
      auto it = committed.find(tp);
      if (it != committed.end() && it->second == offset) continue;
      committed[tp] = offset;
      absl::StrAppend(&out, R"({"event":"committed","partition":)", tp.partition, R"(,"offset":)",
                      offset, "}\n");
    }
    for (const auto& r : *records) absl::StrAppend(&out, evlog::client::FormatRecordJson(r), "\n");
    printed += static_cast<int64_t>(records->size());
    if (!out.empty()) Emit(out);
    if (stall_after > 0 && printed >= stall_after) {
      Emit("{\"event\":\"stalled\"}\n");
      while (!g_stop) absl::SleepFor(absl::Milliseconds(20));
      break;
    }
  }
  absl::Status closed = (*consumer)->Close();
  if (!closed.ok()) {
    std::fprintf(stderr, "evlog_test_consumer: close: %s\n", closed.ToString().c_str());
    return 1;
  }
  return 0;
}
