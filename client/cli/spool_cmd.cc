#include "client/cli/spool_cmd.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "client/admin.h"
#include "client/channel.h"
#include "client/cli/commands.h"
#include "client/spool.h"
#include "client/spooled_producer.h"
#include "nlohmann/json.hpp"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace evlog::cli {
namespace {

// The library logs delivery trouble (server unreachable, dead letters) with spdlog; on the
// command line that belongs on stderr, beside the errors, never mixed into stdout.
void LogToStderr() {
  static const bool once = [] {
    auto logger = spdlog::stderr_color_mt("evlog-spool");
    logger->set_pattern("evlog: %l: %v");
    spdlog::set_default_logger(logger);
    return true;
  }();
  (void)once;
}

volatile std::sig_atomic_t g_stop = 0;
extern "C" void OnStopSignal(int) { g_stop = 1; }

// SIGINT/SIGTERM end the input early without SA_RESTART, so a blocked read(2) returns: what
// was read is spooled and the command reports as usual.
void CatchStopSignals() {
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::string FormatTime(int64_t ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

std::string Summary(int64_t lines, const client::FlushResult& r, const std::string& dir) {
  std::string s = absl::StrCat("produced ", lines, " events: ", r.acknowledged, " acknowledged");
  if (r.spooled > 0) {
    absl::StrAppend(&s, ", ", r.spooled, " in the spool at ", dir,
                    " (drain with: evlog spool drain ", dir, ")");
  }
  if (r.dead_lettered > 0) {
    absl::StrAppend(&s, ", ", r.dead_lettered, " refused by the server (dead letters in ", dir,
                    ")");
  }
  return s;
}

int Fail(const absl::Status& status) {
  PrintError(status);
  return kExitFailure;
}

client::SpooledProducerOptions ProducerOptions(const Invocation& inv) {
  client::SpooledProducerOptions o;
  if (inv.produce.spool_max_bytes.has_value()) o.spool.max_bytes = *inv.produce.spool_max_bytes;
  o.spool.when_full = inv.produce.spool_full_fail ? client::SpoolFullPolicy::kFail
                                                  : client::SpoolFullPolicy::kBlock;
  o.call_timeout = std::min(inv.timeout, absl::Seconds(5));
  o.ack_timeout = std::min(inv.timeout, absl::Seconds(10));
  return o;
}

}  // namespace

int RunProduceSpooled(const Invocation& inv) {
  LogToStderr();
  const std::string& dir = *inv.produce.spool_dir;
  auto channel = client::CreateEvlogChannel(inv.server);

  // Check the topic (and partition) at once when the server answers, so a typo fails now
  // rather than as dead letters later; an unreachable server is no reason to stop.
  {
    auto admin =
        client::Admin::Create(channel, {.timeout = std::min(inv.timeout, absl::Seconds(3))});
    absl::StatusOr<client::TopicDescription> topic = admin->DescribeTopic(inv.topic);
    if (!topic.ok() &&
        (absl::IsNotFound(topic.status()) || absl::IsInvalidArgument(topic.status()))) {
      return Fail(topic.status());
    }
    if (topic.ok() && inv.produce.partition.has_value() &&
        *inv.produce.partition >= topic->partition_count) {
      return Fail(absl::OutOfRangeError(
          absl::StrCat("topic ", inv.topic, " has no partition ", *inv.produce.partition,
                       "; its partitions are 0..", topic->partition_count - 1)));
    }
  }

  absl::StatusOr<std::unique_ptr<client::SpooledProducer>> opened =
      client::SpooledProducer::Open(channel, dir, ProducerOptions(inv));
  if (!opened.ok()) return Fail(opened.status());
  client::SpooledProducer& producer = **opened;
  CatchStopSignals();

  const std::string key = inv.produce.key.value_or("");
  int64_t lines = 0;
  absl::Status status;
  auto send = [&](const char* data, size_t size) {
    client::ProducerRecord record;
    record.key = key;
    record.value.assign(data, size);
    status = producer.Send(inv.topic, std::move(record), inv.produce.partition);
    if (status.ok()) ++lines;
    return status.ok();
  };

  if (absl::Status read = ForEachStdinLine(send, &g_stop); !read.ok()) status = read;

  // Wait up to --drain-timeout for acknowledgements (not after an error or a stop signal);
  // whatever is not acknowledged by then stays in the spool, durable.
  const absl::Time deadline =
      status.ok() && !g_stop ? absl::Now() + inv.produce.drain_timeout : absl::Now();
  absl::StatusOr<client::FlushResult> flushed = producer.Flush(deadline);
  absl::StatusOr<client::FlushResult> closed = producer.Close(absl::Now());
  if (!closed.ok()) return Fail(closed.status());
  const std::string summary = Summary(lines, *closed, dir);
  if (!status.ok()) {
    return Fail(absl::Status(
        status.code(),
        absl::StrCat(status.message(), "; ", lines, " events before it are safe (", summary, ")")));
  }
  if (closed->dead_lettered > 0) {
    return Fail(absl::FailedPreconditionError(
        absl::StrCat(summary, "; see the refused events with: evlog spool status ", dir)));
  }
  std::cerr << summary << std::endl;
  return kExitOk;
}

int RunSpoolStatus(const Invocation& inv) {
  absl::StatusOr<client::SpoolStatus> st = client::Spool::Inspect(inv.spool_dir);
  if (!st.ok()) return Fail(st.status());
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  int64_t dead_records = 0;
  for (const auto& d : st->dead_letters) dead_records += d.records;
  if (inv.json) {
    nlohmann::ordered_json j;
    j["dir"] = st->dir;
    j["producer_id"] = st->producer.producer_id;
    j["producer_epoch"] = st->producer.epoch;
    j["pending_batches"] = st->pending_batches;
    j["pending_records"] = st->pending_records;
    j["bytes"] = st->bytes;
    j["oldest_ms"] = st->oldest_ms;
    j["dead_letter_batches"] = st->dead_letters.size();
    j["dead_letter_records"] = dead_records;
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    for (const auto& p : st->partitions) {
      nlohmann::ordered_json pj;
      pj["topic"] = p.topic;
      pj["partition"] = p.partition;
      pj["batches"] = p.batches;
      pj["records"] = p.records;
      pj["bytes"] = p.bytes;
      pj["oldest_ms"] = p.oldest_ms;
      pj["next_sequence"] = p.next_sequence;
      pj["producer_overrides"] = p.overrides;
      parts.push_back(std::move(pj));
    }
    j["partitions"] = std::move(parts);
    nlohmann::ordered_json dead = nlohmann::ordered_json::array();
    for (const auto& d : st->dead_letters) {
      nlohmann::ordered_json dj;
      dj["id"] = d.id;
      dj["topic"] = d.topic;
      dj["partition"] = d.partition;
      dj["records"] = d.records;
      dj["base_sequence"] = d.base_sequence;
      dj["bytes"] = d.bytes;
      dj["reason"] = nlohmann::ordered_json::parse(d.reason, nullptr, false);
      dead.push_back(std::move(dj));
    }
    j["dead_letters"] = std::move(dead);
    std::cout << j.dump() << std::endl;
    return kExitOk;
  }
  std::cout << "spool:         " << st->dir << "\n"
            << "producer id:   "
            << (st->producer.producer_id == 0
                    ? std::string("none yet (the server was never reached)")
                    : absl::StrCat(st->producer.producer_id, " (epoch ", st->producer.epoch, ")"))
            << "\n"
            << "pending:       " << st->pending_records << " records in " << st->pending_batches
            << " batches\n"
            << "bytes:         " << st->bytes << " (pending and dead letters)\n";
  if (st->oldest_ms > 0) {
    std::cout << "oldest:        " << FormatTime(st->oldest_ms) << " ("
              << absl::FormatDuration(absl::Seconds((now_ms - st->oldest_ms) / 1000)) << " ago)\n";
  }
  std::cout << "dead letters:  " << dead_records << " records in " << st->dead_letters.size()
            << " batches\n\n";
  std::cout << absl::StrFormat("%-24s %9s %9s %11s %13s %13s  %s\n", "TOPIC", "PARTITION",
                               "BATCHES", "RECORDS", "BYTES", "NEXT_SEQ", "OLDEST");
  for (const auto& p : st->partitions) {
    std::cout << absl::StrFormat("%-24s %9d %9d %11d %13d %13d  %s\n", p.topic, p.partition,
                                 p.batches, p.records, p.bytes, p.next_sequence,
                                 p.oldest_ms > 0 ? FormatTime(p.oldest_ms) : "-");
    for (const auto& o : p.overrides) std::cout << "    " << o << "\n";
  }
  if (!st->dead_letters.empty()) {
    std::cout << "\nDEAD LETTERS (kept on disk; refused by the server for good)\n";
    for (const auto& d : st->dead_letters) {
      auto reason = nlohmann::json::parse(d.reason, nullptr, false);
      std::string why = d.reason;
      if (reason.is_object()) {
        why = absl::StrCat(reason.value("status", std::string("?")), ": ",
                           reason.value("message", std::string()), " (at ",
                           FormatTime(reason.value("time_ms", int64_t{0})), ")");
      }
      std::cout << "  batch " << d.id << ": " << d.topic << "/" << d.partition << ", " << d.records
                << " records from sequence " << d.base_sequence << ": " << why << "\n";
    }
  }
  std::cout.flush();
  return kExitOk;
}

int RunSpoolDrain(const Invocation& inv) {
  LogToStderr();
  client::SpooledProducerOptions options;
  options.call_timeout = std::min(inv.timeout, absl::Seconds(5));
  options.ack_timeout = std::min(inv.timeout, absl::Seconds(10));
  absl::StatusOr<std::unique_ptr<client::SpooledProducer>> opened =
      client::SpooledProducer::Open(inv.server, inv.spool_dir, options);
  if (!opened.ok()) return Fail(opened.status());
  client::SpooledProducer& producer = **opened;
  CatchStopSignals();

  // Done when nothing is pending; given up when nothing was delivered for --timeout.
  const int64_t start_records = producer.Stats().spool_records;
  int64_t last_pending = start_records;
  absl::Time last_progress = absl::Now();
  absl::Status drained;
  while (true) {
    drained = producer.WaitUntilDrained(absl::Now() + absl::Milliseconds(200));
    if (drained.ok() || g_stop) break;
    const int64_t pending = producer.Stats().spool_records;
    if (pending < last_pending) {
      last_pending = pending;
      last_progress = absl::Now();
    } else if (absl::Now() - last_progress > inv.timeout) {
      break;
    }
  }
  const client::SpooledProducerStats stats = producer.Stats();
  const absl::Status last_error = producer.LastDeliveryError();
  producer.Close(absl::Now()).IgnoreError();
  if (g_stop && !drained.ok()) {
    return Fail(absl::CancelledError(
        absl::StrCat("stopped by a signal; ", stats.records_acknowledged, " events delivered, ",
                     stats.spool_records, " still in the spool at ", inv.spool_dir)));
  }
  if (!drained.ok()) {
    return Fail(absl::DeadlineExceededError(absl::StrCat(
        "nothing could be delivered for ", absl::FormatDuration(inv.timeout), "; ",
        stats.records_acknowledged, " events delivered, ", stats.spool_records,
        " still in the spool at ", inv.spool_dir,
        last_error.ok()
            ? std::string()
            : absl::StrCat(" (last error: ", absl::StatusCodeToString(last_error.code()), ": ",
                           last_error.message(), ")"))));
  }
  if (stats.batches_dead_lettered > 0) {
    return Fail(absl::FailedPreconditionError(
        absl::StrCat("drained ", stats.records_acknowledged, " events from ", inv.spool_dir,
                     ", but ", stats.records_dead_lettered,
                     " events were refused by the server for good and kept as "
                     "dead letters; see: evlog spool status ",
                     inv.spool_dir)));
  }
  std::cerr << "drained " << stats.records_acknowledged << " events from " << inv.spool_dir
            << "; the spool is empty" << std::endl;
  return kExitOk;
}

}  // namespace evlog::cli
