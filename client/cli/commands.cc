#include "client/cli/commands.h"

#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/admin.h"
#include "client/channel.h"
#include "client/cli/bench_cmd.h"
#include "client/cli/group_format.h"
#include "client/cli/quota_cmd.h"
#include "client/cli/spool_cmd.h"
#include "client/consumer.h"
#include "client/group_admin.h"
#include "client/json_format.h"
#include "client/producer.h"
#include "client/reader.h"
#include "nlohmann/json.hpp"

namespace evlog::cli {
namespace {

using client::Admin;
using client::TopicDescription;

// The server address and call timeout of this run, for sentences about the connection.
// Set once in Run, before any command runs.
std::string g_server;
absl::Duration g_timeout;

// Rewrites gRPC's transport messages into sentences that say what to check.
absl::Status Explain(const absl::Status& status) {
  const absl::string_view message = status.message();
  if (absl::IsUnavailable(status) && (absl::StartsWith(message, "failed to connect") ||
                                      absl::StrContains(message, "Connection refused"))) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach evlogd at ", g_server,
                     "; check that it is running and that --server is right (", message, ")"));
  }
  if (absl::IsDeadlineExceeded(status) && message == "Deadline Exceeded") {
    return absl::DeadlineExceededError(absl::StrCat(
        "evlogd at ", g_server, " did not answer within ", absl::FormatDuration(g_timeout),
        "; it may be overloaded or unreachable (raise --timeout to wait longer)"));
  }
  return status;
}

int Fail(const absl::Status& status) {
  PrintError(Explain(status));
  return kExitFailure;
}

std::unique_ptr<Admin> MakeAdmin(const Invocation& inv) {
  return Admin::Create(inv.server, {.timeout = inv.timeout});
}

std::string FormatRetentionMs(int64_t ms) {
  if (ms < 0) return "forever";
  return absl::StrCat(ms, " ms (", absl::FormatDuration(absl::Milliseconds(ms)), ")");
}

std::string FormatRetentionBytes(int64_t bytes) {
  if (bytes < 0) return "unlimited";
  return absl::StrCat(bytes, " bytes per partition");
}

std::string FormatTime(int64_t ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

// Set by SIGINT/SIGTERM while following; polled by the main thread.
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void OnInterrupt(int) { g_interrupted = 1; }

// Writes JSON lines to stdout through one large buffer.
class LineWriter {
 public:
  LineWriter() { std::setvbuf(stdout, nullptr, _IOFBF, 1 << 20); }
  void Write(const client::ConsumedRecord& record) {
    std::string line = client::FormatRecordJson(record);
    line.push_back('\n');
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  // False if stdout failed (closed pipe, full disk): the lines may not have arrived.
  bool Flush() { return std::fflush(stdout) == 0 && !std::ferror(stdout); }
};

std::unique_ptr<client::GroupAdmin> MakeGroupAdmin(const Invocation& inv) {
  return client::GroupAdmin::Create(inv.server, {.timeout = inv.timeout});
}

}  // namespace

absl::Status ForEachStdinLine(const std::function<bool(const char* data, size_t size)>& line,
                              const volatile int* stop) {
  std::vector<char> buffer(1 << 20);
  std::string partial;  // a line split across reads
  while (stop == nullptr || *stop == 0) {
    const ssize_t got = ::read(STDIN_FILENO, buffer.data(), buffer.size());
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      return absl::DataLossError(
          absl::StrCat("cannot read standard input: ", std::strerror(errno)));
    }
    if (got == 0) break;
    const char* p = buffer.data();
    const char* end = p + got;
    while (p < end) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      if (nl == nullptr) {
        partial.append(p, end - p);
        break;
      }
      bool more;
      if (!partial.empty()) {
        partial.append(p, nl - p);
        more = line(partial.data(), partial.size());
        partial.clear();
      } else {
        more = line(p, nl - p);
      }
      if (!more) return absl::OkStatus();
      p = nl + 1;
    }
  }
  if (!partial.empty() && (stop == nullptr || *stop == 0)) line(partial.data(), partial.size());
  return absl::OkStatus();
}

void PrintError(const absl::Status& status) {
  std::string message(status.message());
  std::cerr << "evlog: " << absl::StatusCodeToString(status.code()) << ": " << message << std::endl;
}

int RunTopicCreate(const Invocation& inv) {
  auto admin = MakeAdmin(inv);
  absl::StatusOr<TopicDescription> topic = admin->CreateTopic(
      inv.topic,
      {.partitions = inv.topic_create.partitions,
       .retention_ms = inv.topic_create.retention_ms,
       .retention_bytes = inv.topic_create.retention_bytes,
       .quota = {inv.quota.bytes_per_sec.value_or(0), inv.quota.records_per_sec.value_or(0)}});
  if (!topic.ok()) return Fail(topic.status());
  std::cout << "created topic " << inv.topic << " with " << topic->partition_count
            << (topic->partition_count == 1 ? " partition" : " partitions") << std::endl;
  return kExitOk;
}

// Prints a list of names: one per line, or a JSON array with --json.
int PrintNames(const Invocation& inv, const absl::StatusOr<std::vector<std::string>>& names) {
  if (!names.ok()) return Fail(names.status());
  if (inv.json) {
    std::cout << nlohmann::json(*names).dump() << std::endl;
  } else {
    for (const std::string& name : *names) std::cout << name << "\n";
    std::cout.flush();
  }
  return kExitOk;
}

int RunTopicList(const Invocation& inv) { return PrintNames(inv, MakeAdmin(inv)->ListTopics()); }

int RunTopicDescribe(const Invocation& inv) {
  auto admin = MakeAdmin(inv);
  absl::StatusOr<TopicDescription> topic = admin->DescribeTopic(inv.topic);
  if (!topic.ok()) return Fail(topic.status());
  if (inv.json) {
    nlohmann::ordered_json j;
    j["name"] = topic->name;
    j["partitions"] = topic->partition_count;
    j["retention_ms"] = topic->retention_ms;
    j["retention_bytes"] = topic->retention_bytes;
    j["created_ms"] = topic->created_ms;
    j["max_bytes_per_sec"] = topic->quota.bytes_per_sec;
    j["max_records_per_sec"] = topic->quota.records_per_sec;
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    for (const auto& p : topic->partitions) {
      nlohmann::ordered_json pj;
      pj["partition"] = p.partition;
      pj["start_offset"] = p.start_offset;
      pj["end_offset"] = p.end_offset;
      pj["bytes"] = p.bytes;
      parts.push_back(std::move(pj));
    }
    j["partition_info"] = std::move(parts);
    std::cout << j.dump() << std::endl;
    return kExitOk;
  }
  std::cout << "topic:            " << topic->name << "\n"
            << "partitions:       " << topic->partition_count << "\n"
            << "retention time:   " << FormatRetentionMs(topic->retention_ms) << "\n"
            << "retention size:   " << FormatRetentionBytes(topic->retention_bytes) << "\n"
            << "created:          " << FormatTime(topic->created_ms) << "\n"
            << "quota:            " << FormatByteRate(topic->quota.bytes_per_sec) << ", "
            << FormatRecordRate(topic->quota.records_per_sec) << "\n\n";
  std::cout << absl::StrFormat("%-10s %15s %15s %15s %15s\n", "PARTITION", "START", "END",
                               "RECORDS", "BYTES");
  for (const auto& p : topic->partitions) {
    std::cout << absl::StrFormat("%-10d %15d %15d %15d %15d\n", p.partition, p.start_offset,
                                 p.end_offset, p.end_offset - p.start_offset, p.bytes);
  }
  std::cout.flush();
  return kExitOk;
}

int RunTopicDelete(const Invocation& inv) {
  auto admin = MakeAdmin(inv);
  if (absl::Status s = admin->DeleteTopic(inv.topic); !s.ok()) return Fail(s);
  std::cout << "deleted topic " << inv.topic << std::endl;
  return kExitOk;
}

int RunProduce(const Invocation& inv) {
  if (inv.produce.spool_dir.has_value()) return RunProduceSpooled(inv);
  auto channel = client::CreateEvlogChannel(inv.server);
  auto admin = Admin::Create(channel, {.timeout = inv.timeout});
  // Check the topic (and partition) before reading stdin, so a typo fails at once even with
  // empty input.
  absl::StatusOr<TopicDescription> topic = admin->DescribeTopic(inv.topic);
  if (!topic.ok()) return Fail(topic.status());
  if (inv.produce.partition.has_value() && *inv.produce.partition >= topic->partition_count) {
    return Fail(absl::OutOfRangeError(
        absl::StrCat("topic ", inv.topic, " has no partition ", *inv.produce.partition,
                     "; its partitions are 0..", topic->partition_count - 1)));
  }

  client::ProducerOptions options;
  options.ack_timeout = inv.timeout;
  options.call_timeout = inv.timeout;
  auto producer = client::Producer::Create(channel, options);

  const std::string key = inv.produce.key.value_or("");
  int64_t lines = 0;
  absl::Status status;
  auto send = [&](const char* data, size_t size) {
    client::ProducerRecord record;
    record.key = key;
    record.value.assign(data, size);
    status = producer->Send(inv.topic, std::move(record), inv.produce.partition);
    ++lines;
    if (status.ok() && (lines & 0xFFFF) == 0) status = producer->FirstError();
    return status.ok();
  };

  if (absl::Status read = ForEachStdinLine(send); !read.ok()) status = read;

  // After an error, stop at once (what is in flight may or may not be stored); otherwise wait
  // for every acknowledgement; each record has its own delivery deadline, so this is bounded.
  absl::Status closed = producer->Close(status.ok() ? absl::InfiniteFuture() : absl::Now());
  if (status.ok()) status = closed;
  if (!status.ok()) {
    const client::ProducerStats stats = producer->Stats();
    status = Explain(status);
    PrintError(
        absl::Status(status.code(), absl::StrCat(status.message(), " (", stats.records_acknowledged,
                                                 " of ", lines, " events were acknowledged)")));
    return kExitFailure;
  }
  std::cerr << "produced " << lines << " events" << std::endl;
  return kExitOk;
}

int RunReplay(const Invocation& inv) {
  const ReplayArgs& args = inv.replay;
  auto channel = client::CreateEvlogChannel(inv.server);
  auto admin = Admin::Create(channel, {.timeout = inv.timeout});
  absl::StatusOr<TopicDescription> topic = admin->DescribeTopic(inv.topic);
  if (!topic.ok()) return Fail(topic.status());

  std::vector<client::PartitionDescription> partitions;
  if (args.partition.has_value()) {
    if (*args.partition >= topic->partition_count) {
      return Fail(absl::OutOfRangeError(absl::StrCat("topic ", inv.topic, " has no partition ",
                                                     *args.partition, "; its partitions are 0..",
                                                     topic->partition_count - 1)));
    }
    partitions.push_back(topic->partitions[*args.partition]);
  } else {
    partitions = topic->partitions;
  }

  // Resolve each partition's start offset before printing anything, so that a bad start
  // fails the whole command with no partial output.
  std::vector<int64_t> starts;
  if (args.start == StartKind::kTime) {
    std::vector<int32_t> ids;
    for (const auto& p : partitions) ids.push_back(p.partition);
    auto offsets = admin->OffsetsForTimestamp(inv.topic, args.from_time_ms, ids);
    if (!offsets.ok()) return Fail(offsets.status());
    if (offsets->size() != partitions.size()) {
      return Fail(absl::InternalError("the server answered for other partitions than asked"));
    }
    for (const auto& [p, offset] : *offsets) starts.push_back(offset);
  } else {
    for (const auto& p : partitions) {
      if (args.start == StartKind::kBeginning) {
        starts.push_back(p.start_offset);
        continue;
      }
      if (args.from_offset > p.end_offset || args.from_offset < p.start_offset) {
        return Fail(absl::OutOfRangeError(absl::StrCat(
            "offset ", args.from_offset, " is outside partition ", p.partition, " of topic ",
            inv.topic, ": its readable offsets are ", p.start_offset, "..", p.end_offset,
            " (the end offset ", p.end_offset, " is the next to be written)")));
      }
      starts.push_back(args.from_offset);
    }
  }

  client::ReaderOptions reader_options;
  reader_options.idle_timeout = inv.timeout;
  reader_options.heartbeat = std::min(absl::Seconds(5), inv.timeout / 3);
  auto reader = client::Reader::Create(channel, reader_options);
  LineWriter out;

  auto spec_for = [&](size_t i, int64_t remaining) {
    client::ReadSpec spec;
    spec.topic = inv.topic;
    spec.partition = partitions[i].partition;
    spec.start = client::ReadSpec::kOffset;
    spec.offset = starts[i];
    spec.follow = args.follow;
    if (!args.follow) {
      // Stop at the end offset as of the start (the snapshot above), even if this partition
      // is read after others.
      spec.end_offset = partitions[i].end_offset;
    }
    if (args.to_offset.has_value()) {
      spec.end_offset = spec.end_offset.has_value() ? std::min(*spec.end_offset, *args.to_offset)
                                                    : *args.to_offset;
    }
    spec.max_records = remaining;
    return spec;
  };

  if (!args.follow) {
    int64_t printed = 0;
    std::vector<client::ConsumedRecord> records;
    for (size_t i = 0; i < partitions.size(); ++i) {
      const int64_t remaining = args.max.has_value() ? *args.max - printed : 0;
      if (args.max.has_value() && remaining <= 0) break;
      client::ReadSpec spec = spec_for(i, remaining);
      if (spec.end_offset.has_value() && *spec.end_offset <= spec.offset) continue;
      auto stream = reader->Open(spec);
      while (stream->Next(&records)) {
        for (const auto& r : records) out.Write(r);
        printed += static_cast<int64_t>(records.size());
      }
      if (absl::Status s = stream->Finish(); !s.ok()) {
        out.Flush();
        return Fail(s);
      }
    }
    out.Flush();
    return kExitOk;
  }

  // Follow: every partition at once, one thread each; output lines never interleave.
  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  absl::Mutex mu;
  int64_t printed = 0;
  int running = 0;
  absl::Status first_error;
  std::vector<std::unique_ptr<client::ReadStream>> streams;
  for (size_t i = 0; i < partitions.size(); ++i) {
    client::ReadSpec spec = spec_for(i, args.max.value_or(0));
    if (spec.end_offset.has_value() && *spec.end_offset <= spec.offset) continue;
    streams.push_back(reader->Open(spec));
  }
  auto cancel_all = [&streams] {
    for (auto& s : streams) s->Cancel();
  };
  std::vector<std::thread> threads;
  running = static_cast<int>(streams.size());
  for (auto& stream : streams) {
    threads.emplace_back([&, s = stream.get()] {
      std::vector<client::ConsumedRecord> records;
      bool done = false;
      while (!done && s->Next(&records)) {
        absl::MutexLock lock(&mu);
        for (const auto& r : records) {
          if (args.max.has_value() && printed >= *args.max) {
            done = true;
            break;
          }
          out.Write(r);
          ++printed;
        }
        out.Flush();
        if (args.max.has_value() && printed >= *args.max) done = true;
      }
      if (done) {
        absl::MutexLock lock(&mu);
        cancel_all();
      }
      absl::Status status = s->Finish();
      absl::MutexLock lock(&mu);
      if (!status.ok() && first_error.ok()) {
        first_error = status;
        cancel_all();
      }
      --running;
    });
  }
  {
    absl::MutexLock lock(&mu);
    bool interrupted = false;
    while (running > 0) {
      auto finished = [&running] { return running == 0; };
      mu.AwaitWithTimeout(absl::Condition(&finished), absl::Milliseconds(100));
      if (g_interrupted && !interrupted) {
        interrupted = true;
        cancel_all();
      }
    }
  }
  for (auto& t : threads) t.join();
  out.Flush();
  if (!first_error.ok()) return Fail(first_error);
  return kExitOk;
}

int RunConsume(const Invocation& inv) {
  const ConsumeArgs& args = inv.consume;
  client::ConsumerOptions options;
  options.group = args.group;
  options.topics = {inv.topic};
  if (args.session_timeout_ms.has_value()) {
    options.session_timeout = absl::Milliseconds(*args.session_timeout_ms);
  }
  options.auto_offset_reset =
      args.auto_offset_reset_latest ? client::OffsetReset::kLatest : client::OffsetReset::kEarliest;
  // Commit explicitly, after the lines reached stdout: "commits what it printed".
  options.auto_commit = false;
  options.call_timeout = inv.timeout;
  options.give_up_after = inv.timeout;
  options.reader.idle_timeout = inv.timeout;
  options.reader.heartbeat = std::min(absl::Seconds(5), inv.timeout / 3);
  // Retention removed records the group had not read: say so (they cannot be printed).
  options.on_assignment = [group = args.group](const client::AssignmentChange& change) {
    for (const client::AssignedPartition& a : change.assigned) {
      if (!a.trimmed) continue;
      std::cerr << absl::StrCat("evlog: warning: retention removed records of ", a.tp.topic, ":",
                                a.tp.partition, " that group ", group,
                                " had not read; reading resumes at offset ", a.start_offset,
                                ", the partition's start offset\n");
    }
  };
  auto consumer = client::Consumer::Create(client::CreateEvlogChannel(inv.server), options);
  if (!consumer.ok()) return Fail(consumer.status());

  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  // A closed stdout (`evlog consume ... | head`) ends the loop with a write error instead of
  // killing the process, so what was not printed is not committed and the group is left.
  std::signal(SIGPIPE, SIG_IGN);
  LineWriter out;
  absl::Status status;
  int64_t printed = 0;
  absl::Time last_record = absl::Now();
  constexpr size_t kBatch = 10000;
  while (!g_interrupted) {
    if (args.max.has_value() && printed >= *args.max) break;
    const absl::Time now = absl::Now();
    // Wake at least every 100 ms to notice signals.
    absl::Time deadline = now + absl::Milliseconds(100);
    if (args.idle_timeout_ms.has_value()) {
      const absl::Time idle_end = last_record + absl::Milliseconds(*args.idle_timeout_ms);
      if (now >= idle_end) break;
      deadline = std::min(deadline, idle_end);
    }
    size_t want = kBatch;
    if (args.max.has_value())
      want = static_cast<size_t>(std::min<int64_t>(*args.max - printed, kBatch));
    absl::StatusOr<std::vector<client::ConsumedRecord>> records = (*consumer)->Poll(want, deadline);
    if (!records.ok()) {
      status = records.status();
      break;
    }
    if (records->empty()) continue;
    for (const client::ConsumedRecord& r : *records) out.Write(r);
    if (!out.Flush()) {
      status = absl::DataLossError(
          absl::StrCat("cannot write to standard output (", std::strerror(errno), "); ", printed,
                       " records were printed and committed, the last batch was not committed"));
      break;
    }
    printed += static_cast<int64_t>(records->size());
    last_record = absl::Now();
    // Lost partitions (FAILED_PRECONDITION) are normal during a rebalance: their new owner
    // prints from the group's committed offset. Other failures are retried by the next
    // commit; if the server stays unreachable, Poll reports it.
    (*consumer)->Commit().IgnoreError();
  }
  if (status.ok()) {
    absl::Status committed = (*consumer)->Commit();
    if (!committed.ok() && !absl::IsFailedPrecondition(committed)) status = committed;
  }
  absl::Status closed = (*consumer)->Close();
  if (status.ok()) status = closed;
  if (!status.ok()) return Fail(status);
  return kExitOk;
}

int RunGroupList(const Invocation& inv) {
  return PrintNames(inv, MakeGroupAdmin(inv)->ListGroups());
}

int RunGroupDescribe(const Invocation& inv) {
  absl::StatusOr<client::GroupInfo> group = MakeGroupAdmin(inv)->DescribeGroup(inv.group);
  if (!group.ok()) return Fail(group.status());
  if (inv.json) {
    std::cout << FormatGroupJson(*group) << std::endl;
  } else {
    std::cout << FormatGroupTable(*group);
    std::cout.flush();
  }
  return kExitOk;
}

int RunGroupReset(const Invocation& inv) {
  const GroupResetArgs& args = inv.group_reset;
  client::ResetTarget target;
  target.value = args.value;
  switch (args.kind) {
    case ResetKind::kToOffset:
      target.kind = client::ResetTarget::kToOffset;
      break;
    case ResetKind::kToEarliest:
      target.kind = client::ResetTarget::kToEarliest;
      break;
    case ResetKind::kToLatest:
      target.kind = client::ResetTarget::kToLatest;
      break;
    case ResetKind::kToTime:
      target.kind = client::ResetTarget::kToTime;
      break;
    case ResetKind::kShiftBy:
      target.kind = client::ResetTarget::kShiftBy;
      break;
  }
  auto offsets =
      MakeGroupAdmin(inv)->ResetOffsets(inv.group, inv.topic, args.partition, target, inv.force);
  if (!offsets.ok()) return Fail(offsets.status());
  std::cout << FormatResetResult(inv.group, inv.topic, *offsets, inv.json);
  std::cout.flush();
  return kExitOk;
}

int RunGroupDelete(const Invocation& inv) {
  if (absl::Status s = MakeGroupAdmin(inv)->DeleteGroup(inv.group, inv.force); !s.ok()) {
    return Fail(s);
  }
  std::cout << "deleted group " << inv.group << std::endl;
  return kExitOk;
}

int RunHealth(const Invocation& inv) {
  auto admin = MakeAdmin(inv);
  absl::StatusOr<client::HealthState> state = admin->CheckHealth(inv.health_service);
  if (!state.ok()) return Fail(state.status());
  switch (*state) {
    case client::HealthState::kServing:
      std::cout << "SERVING" << std::endl;
      return kExitOk;
    case client::HealthState::kNotServing:
      return Fail(
          absl::UnavailableError("the server reports NOT_SERVING; it may be starting "
                                 "or shutting down"));
    case client::HealthState::kServiceUnknown:
      return Fail(absl::NotFoundError(
          absl::StrCat("the server does not know the service \"", inv.health_service, "\"")));
    default:
      return Fail(absl::UnknownError("the server reports an UNKNOWN health status"));
  }
}

int Run(const Invocation& inv) {
  g_server = inv.server;
  g_timeout = inv.timeout;
  switch (inv.command) {
    case Command::kHelp:
      std::cout << inv.help_text;
      std::cout.flush();
      return kExitOk;
    case Command::kTopicCreate:
      return RunTopicCreate(inv);
    case Command::kTopicList:
      return RunTopicList(inv);
    case Command::kTopicDescribe:
      return RunTopicDescribe(inv);
    case Command::kTopicDelete:
      return RunTopicDelete(inv);
    case Command::kTopicAlter:
      return RunTopicAlter(inv);
    case Command::kQuotaSet:
      return RunQuotaSet(inv);
    case Command::kQuotaDelete:
      return RunQuotaDelete(inv);
    case Command::kQuotaList:
      return RunQuotaList(inv);
    case Command::kProduce:
      return RunProduce(inv);
    case Command::kReplay:
      return RunReplay(inv);
    case Command::kConsume:
      return RunConsume(inv);
    case Command::kGroupList:
      return RunGroupList(inv);
    case Command::kGroupDescribe:
      return RunGroupDescribe(inv);
    case Command::kGroupReset:
      return RunGroupReset(inv);
    case Command::kGroupDelete:
      return RunGroupDelete(inv);
    case Command::kHealth:
      return RunHealth(inv);
    case Command::kSpoolStatus:
      return RunSpoolStatus(inv);
    case Command::kSpoolDrain:
      return RunSpoolDrain(inv);
    case Command::kBench:
      return RunBench(inv);
  }
  return kExitFailure;
}

}  // namespace evlog::cli
