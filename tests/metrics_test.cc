// evlogd's Prometheus endpoint end to end: a real evlogd with --metrics-listen=127.0.0.1:0,
// scraped with plain HTTP over a socket. Checks that the counters move by exactly what the
// test did (records and bytes in and out, over ProduceOne and Produce streams, latency
// observations, fsyncs, refusals by reason, group lag), that open connections and streams are
// counted, that the output parses as the text format, and that other paths answer 404. One
// test measures the cost of a scrape with 100 topics x 8 partitions and 20 groups and prints it
// (no timing assertion).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "evlog/v1/groups.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

using ::testing::HasSubstr;

struct HttpResponse {
  int status = 0;
  std::string headers;  // the status line and headers, as received
  std::string body;
};

// One HTTP/1.1 request over a fresh connection to "127.0.0.1:PORT", read to EOF.
absl::StatusOr<HttpResponse> HttpRequest(const std::string& address, const std::string& method,
                                         const std::string& path,
                                         absl::Duration timeout = absl::Seconds(10)) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError("bad address " + address);
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError("socket failed");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &sa.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    close(fd);
    return absl::UnavailableError("cannot connect to " + address);
  }
  const std::string request = absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: ", address,
                                           "\r\nConnection: close\r\n\r\n");
  if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    close(fd);
    return absl::UnavailableError("send failed");
  }
  std::string raw;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const int64_t left = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (left <= 0) {
      close(fd);
      return absl::DeadlineExceededError("no complete response from " + address);
    }
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buffer[65536];
    const ssize_t got = recv(fd, buffer, sizeof(buffer), 0);
    if (got < 0) {
      close(fd);
      return absl::UnavailableError("recv failed");
    }
    if (got == 0) break;
    raw.append(buffer, static_cast<size_t>(got));
  }
  close(fd);
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return absl::DataLossError("no header end in: " + raw);
  HttpResponse response;
  response.headers = raw.substr(0, end);
  response.body = raw.substr(end + 4);
  // "HTTP/1.1 200 OK"
  std::vector<std::string> first =
      absl::StrSplit(response.headers.substr(0, raw.find("\r\n")), ' ');
  if (first.size() < 2 || !absl::SimpleAtoi(first[1], &response.status)) {
    return absl::DataLossError("bad status line in: " + response.headers);
  }
  return response;
}

// Samples of a scrape: "name{labels}" (exactly as printed) -> value.
using Samples = std::map<std::string, double>;

// Parses a scrape, checking that every line is a comment (# HELP / # TYPE) or a sample
// `name{label="value",...} value` of the text format 0.0.4.
Samples ParseExposition(const std::string& text) {
  static const std::regex kSample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")"
      R"((,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})?) ([^ ]+)$)");
  static const std::regex kComment(
      R"(^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram))$)");
  Samples samples;
  EXPECT_TRUE(text.empty() || text.back() == '\n');
  for (absl::string_view line_view : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    const std::string line(line_view);
    if (line[0] == '#') {
      EXPECT_TRUE(std::regex_match(line, kComment)) << "bad comment line: " << line;
      continue;
    }
    std::smatch m;
    if (!std::regex_match(line, m, kSample)) {
      ADD_FAILURE() << "bad sample line: " << line;
      continue;
    }
    double value = 0;
    const std::string v = m[6].str();
    if (v == "+Inf") {
      value = 1e308;
    } else {
      EXPECT_TRUE(absl::SimpleAtod(v, &value)) << "bad value in: " << line;
    }
    EXPECT_EQ(samples.count(m[1].str()), 0u) << "duplicate sample: " << line;
    samples[m[1].str()] = value;
  }
  return samples;
}

// The value of a sample, 0 if absent (a labelled series appears on first use).
double Value(const Samples& s, const std::string& key) {
  auto it = s.find(key);
  return it == s.end() ? 0 : it->second;
}

class MetricsTest : public ::testing::Test {
 protected:
  void StartServer(std::vector<std::string> extra_flags = {}) {
    ServerProcessOptions options;
    options.extra_flags = {"--metrics-listen=127.0.0.1:0"};
    options.extra_flags.insert(options.extra_flags.end(), extra_flags.begin(), extra_flags.end());
    auto server = ServerProcess::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    // evlogd prints the metrics line to stderr before its ready line, so it is in the log.
    ASSERT_TRUE(WaitFor(
        [&] {
          std::ifstream log(server_->log_path());
          std::string line;
          while (std::getline(log, line)) {
            constexpr absl::string_view kPrefix = "evlogd metrics on ";
            if (absl::StartsWith(line, kPrefix)) {
              metrics_address_ = line.substr(kPrefix.size());
              return true;
            }
          }
          return false;
        },
        absl::Seconds(10)))
        << server_->LogTail();
    stubs_ = std::make_unique<EvlogStubs>(server_->address());
    groups_ = v1::GroupService::NewStub(stubs_->channel);
  }

  Samples Scrape() {
    absl::StatusOr<HttpResponse> r = HttpRequest(metrics_address_, "GET", "/metrics");
    EXPECT_TRUE(r.ok()) << r.status();
    if (!r.ok()) return {};
    EXPECT_EQ(r->status, 200) << r->headers;
    EXPECT_THAT(r->headers, HasSubstr("text/plain; version=0.0.4"));
    last_body_ = r->body;
    return ParseExposition(r->body);
  }

  std::unique_ptr<ServerProcess> server_;
  std::string metrics_address_;
  std::unique_ptr<EvlogStubs> stubs_;
  std::unique_ptr<v1::GroupService::Stub> groups_;
  std::string last_body_;
};

TEST_F(MetricsTest, CountersMoveByExactlyWhatWasDone) {
  StartServer({"--max-record-bytes=1024"});
  ASSERT_TRUE(CreateTopic(*stubs_, "m", 2).ok());
  const Samples before = Scrape();
  for (const char* name :
       {"evlog_fsyncs_total", "evlog_write_groups_total", "evlog_rocksdb_stall_seconds_total",
        "evlog_open_connections", "evlog_produce_streams", "evlog_read_streams",
        "evlog_produce_latency_seconds_count", "evlog_inflight_request_bytes"}) {
    EXPECT_EQ(before.count(name), 1u) << name << " missing from:\n" << last_body_;
  }

  // 4 requests x 5 records, key "k" (1 byte) + 100-byte values: 101 record bytes each.
  constexpr int kRequests = 4, kPerRequest = 5;
  for (int r = 0; r < kRequests; ++r) {
    std::vector<std::string> values(kPerRequest, std::string(100, 'a' + r));
    ProduceOutcome out = ProduceOne(*stubs_, MakeBatch("m", r % 2, values, "k"));
    ASSERT_TRUE(out.status.ok()) << Describe(out.status);
  }
  int64_t read_records = 0;
  for (int p = 0; p < 2; ++p) {
    ReadOutcome read = ReadAll(*stubs_, ReadFrom("m", p, 0));
    ASSERT_TRUE(read.status.ok()) << Describe(read.status);
    read_records += static_cast<int64_t>(read.records.size());
  }
  ASSERT_EQ(read_records, kRequests * kPerRequest);

  // Refusals: a record over --max-record-bytes, a bad topic name on produce and on an admin
  // call (counted by the interceptor), and a bad read request.
  ProduceOutcome big = ProduceOne(*stubs_, MakeBatch("m", 0, {std::string(2000, 'x')}));
  ASSERT_EQ(big.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ProduceOutcome bad_name = ProduceOne(*stubs_, MakeBatch("bad name", 0, {"v"}));
  ASSERT_EQ(bad_name.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ASSERT_EQ(CreateTopic(*stubs_, "bad name").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ReadOutcome bad_read = ReadAll(*stubs_, ReadFrom("m", -1, 0));
  ASSERT_EQ(bad_read.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  // A group that committed offset 3 on partition 0 (which holds 10 records) and nothing on 1.
  v1::JoinGroupRequest join;
  join.set_group("g");
  join.add_topics("m");
  v1::JoinGroupResponse joined;
  ASSERT_TRUE(groups_->JoinGroup(Deadline().get(), join, &joined).ok());
  v1::CommitOffsetsRequest commit;
  commit.set_group("g");
  commit.set_member_id(joined.member_id());
  commit.set_generation(joined.generation());
  commit.set_topic("m");
  v1::PartitionOffsetCommit* o = commit.add_offsets();
  o->set_partition(0);
  o->set_offset(3);
  v1::CommitOffsetsResponse committed;
  grpc::Status cs = groups_->CommitOffsets(Deadline().get(), commit, &committed);
  ASSERT_TRUE(cs.ok()) << Describe(cs);

  const Samples after = Scrape();
  auto delta = [&](const std::string& key) { return Value(after, key) - Value(before, key); };
  EXPECT_EQ(delta("evlog_records_in_total{topic=\"m\"}"), kRequests * kPerRequest);
  EXPECT_EQ(delta("evlog_bytes_in_total{topic=\"m\"}"), kRequests * kPerRequest * 101);
  EXPECT_EQ(delta("evlog_records_out_total{topic=\"m\"}"), kRequests * kPerRequest);
  EXPECT_EQ(delta("evlog_bytes_out_total{topic=\"m\"}"), kRequests * kPerRequest * 101);
  EXPECT_EQ(delta("evlog_produce_latency_seconds_count"), kRequests);
  EXPECT_EQ(delta("evlog_produce_latency_seconds_bucket{le=\"+Inf\"}"), kRequests);
  EXPECT_GT(delta("evlog_produce_latency_seconds_sum"), 0);
  EXPECT_GE(delta("evlog_fsyncs_total"), 1);  // at least one per acknowledged write group
  EXPECT_GE(delta("evlog_write_groups_total"), 1);
  EXPECT_EQ(delta("evlog_rejected_requests_total{reason=\"record_too_large\"}"), 1);
  EXPECT_EQ(delta("evlog_rejected_requests_total{reason=\"invalid\"}"), 3);
  EXPECT_EQ(delta("evlog_rejected_requests_total{reason=\"queue_full\"}"), 0);
  EXPECT_EQ(Value(after, "evlog_group_lag{group=\"g\",topic=\"m\",partition=\"0\"}"), 10 - 3);
  EXPECT_EQ(Value(after, "evlog_group_lag{group=\"g\",topic=\"m\",partition=\"1\"}"), 10 - 0);
  EXPECT_GE(Value(after, "evlog_open_connections"), 1);  // our stubs' connection
  EXPECT_EQ(Value(after, "evlog_produce_streams"), 0);
  EXPECT_EQ(Value(after, "evlog_read_streams"), 0);
  EXPECT_EQ(Value(after, "evlog_inflight_request_bytes"), 0);  // every request answered
  EXPECT_EQ(after.count("evlog_records_in_total{topic=\"bad name\"}"), 0u);  // no series
}

// A deleted topic's series leave the scrape; a topic created again under that name brings them
// back with their values (counters never go down).
TEST_F(MetricsTest, DeletedTopicsLeaveTheScrape) {
  StartServer();
  ASSERT_TRUE(CreateTopic(*stubs_, "gone", 1).ok());
  ASSERT_TRUE(CreateTopic(*stubs_, "kept", 1).ok());
  for (const char* topic : {"gone", "kept"}) {
    ProduceOutcome out = ProduceOne(*stubs_, MakeBatch(topic, 0, {"a", "b"}));
    ASSERT_TRUE(out.status.ok()) << Describe(out.status);
  }
  Samples samples = Scrape();
  EXPECT_EQ(Value(samples, "evlog_records_in_total{topic=\"gone\"}"), 2) << last_body_;

  auto delete_topic = [&](const std::string& name) {
    v1::DeleteTopicRequest request;
    request.set_name(name);
    v1::DeleteTopicResponse response;
    return stubs_->admin->DeleteTopic(Deadline().get(), request, &response);
  };
  grpc::Status deleted = delete_topic("gone");
  ASSERT_TRUE(deleted.ok()) << Describe(deleted);
  samples = Scrape();
  for (const char* family : {"evlog_records_in_total", "evlog_bytes_in_total",
                             "evlog_records_out_total", "evlog_bytes_out_total"}) {
    EXPECT_EQ(samples.count(absl::StrCat(family, "{topic=\"gone\"}")), 0u) << last_body_;
  }
  EXPECT_EQ(Value(samples, "evlog_records_in_total{topic=\"kept\"}"), 2) << last_body_;

  ASSERT_TRUE(CreateTopic(*stubs_, "gone", 1).ok());
  ProduceOutcome out = ProduceOne(*stubs_, MakeBatch("gone", 0, {"c"}));
  ASSERT_TRUE(out.status.ok()) << Describe(out.status);
  samples = Scrape();
  EXPECT_EQ(Value(samples, "evlog_records_in_total{topic=\"gone\"}"), 3) << last_body_;
}

TEST_F(MetricsTest, ProduceStreamsAreCountedPerRequest) {
  StartServer();
  ASSERT_TRUE(CreateTopic(*stubs_, "s").ok());
  const Samples before = Scrape();
  auto context = Deadline(absl::Seconds(20));
  auto stream = stubs_->producer->Produce(context.get());
  // While the stream is open it shows in the gauge.
  EXPECT_TRUE(
      WaitFor([&] { return Value(Scrape(), "evlog_produce_streams") == 1; }, absl::Seconds(10)))
      << last_body_;
  constexpr int kRequests = 3;
  for (int r = 0; r < kRequests; ++r) {
    v1::ProduceRequest request = MakeBatch("s", 0, {"xy", "z"});  // 3 record bytes
    request.set_request_id(r);
    ASSERT_TRUE(stream->Write(request));
  }
  v1::ProduceRequest invalid = MakeBatch("s", 0, {"v"});
  invalid.set_request_id(kRequests);
  invalid.mutable_records(0)->set_timestamp_ms(-5);  // refused in-band with INVALID_ARGUMENT
  ASSERT_TRUE(stream->Write(invalid));
  for (int r = 0; r <= kRequests; ++r) {
    v1::ProduceResponse response;
    ASSERT_TRUE(stream->Read(&response));
    EXPECT_EQ(response.has_error(), r == kRequests) << response.DebugString();
  }
  ASSERT_TRUE(stream->WritesDone());
  grpc::Status finished = stream->Finish();
  ASSERT_TRUE(finished.ok()) << Describe(finished);

  const Samples after = Scrape();
  auto delta = [&](const std::string& key) { return Value(after, key) - Value(before, key); };
  EXPECT_EQ(delta("evlog_records_in_total{topic=\"s\"}"), 2 * kRequests);
  EXPECT_EQ(delta("evlog_bytes_in_total{topic=\"s\"}"), 3 * kRequests);
  EXPECT_EQ(delta("evlog_produce_latency_seconds_count"), kRequests);
  EXPECT_EQ(delta("evlog_rejected_requests_total{reason=\"invalid\"}"), 1);
  EXPECT_TRUE(
      WaitFor([&] { return Value(Scrape(), "evlog_produce_streams") == 0; }, absl::Seconds(10)))
      << last_body_;
}

TEST_F(MetricsTest, OtherPathsAndMethodsAreRefused) {
  StartServer();
  absl::StatusOr<HttpResponse> other = HttpRequest(metrics_address_, "GET", "/");
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->status, 404);
  absl::StatusOr<HttpResponse> sub = HttpRequest(metrics_address_, "GET", "/metrics/x");
  ASSERT_TRUE(sub.ok()) << sub.status();
  EXPECT_EQ(sub->status, 404);
  absl::StatusOr<HttpResponse> post = HttpRequest(metrics_address_, "POST", "/metrics");
  ASSERT_TRUE(post.ok()) << post.status();
  EXPECT_EQ(post->status, 405);
  Scrape();  // and the endpoint still serves
}

TEST_F(MetricsTest, OpenConnectionsCountsIdleConnections) {
  StartServer();
  ASSERT_TRUE(CreateTopic(*stubs_, "t").ok());  // connects our own channel
  const double base = Value(Scrape(), "evlog_open_connections");
  EXPECT_GE(base, 1);
  constexpr int kExtra = 3;
  {
    std::vector<std::shared_ptr<grpc::Channel>> channels;
    for (int i = 0; i < kExtra; ++i) {
      grpc::ChannelArguments args;
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per channel
      channels.push_back(
          grpc::CreateCustomChannel(server_->address(), grpc::InsecureChannelCredentials(), args));
      ASSERT_TRUE(
          channels.back()->WaitForConnected(absl::ToChronoTime(absl::Now() + absl::Seconds(10))));
    }
    // Connected and idle: no call in progress on any of them.
    EXPECT_TRUE(WaitFor([&] { return Value(Scrape(), "evlog_open_connections") >= base + kExtra; },
                        absl::Seconds(10)))
        << last_body_;
  }
  // Closed: the server notices the connections end.
  EXPECT_TRUE(
      WaitFor([&] { return Value(Scrape(), "evlog_open_connections") <= base; }, absl::Seconds(20)))
      << last_body_;
}

// Not a correctness check: measures what one scrape costs with 100 topics x 8 partitions and
// 20 groups (each committed on 5 topics) and prints it.
TEST_F(MetricsTest, ScrapeCostWithManyTopicsAndGroups) {
  StartServer();
  constexpr int kTopics = 100, kPartitions = 8, kGroups = 20, kTopicsPerGroup = 5;
  for (int t = 0; t < kTopics; ++t) {
    const std::string topic = absl::StrCat("topic-", t);
    ASSERT_TRUE(CreateTopic(*stubs_, topic, kPartitions).ok());
    for (int p = 0; p < kPartitions; ++p) {
      ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, p, {"a", "b"})).status.ok());
    }
    ASSERT_TRUE(ReadAll(*stubs_, ReadFrom(topic, 0, 0)).status.ok());
  }
  for (int g = 0; g < kGroups; ++g) {
    v1::JoinGroupRequest join;
    join.set_group(absl::StrCat("group-", g));
    join.set_session_timeout_ms(600000);
    for (int i = 0; i < kTopicsPerGroup; ++i) {
      join.add_topics(absl::StrCat("topic-", (g * kTopicsPerGroup + i) % kTopics));
    }
    v1::JoinGroupResponse joined;
    ASSERT_TRUE(groups_->JoinGroup(Deadline().get(), join, &joined).ok());
    for (const std::string& topic : join.topics()) {
      v1::CommitOffsetsRequest commit;
      commit.set_group(join.group());
      commit.set_member_id(joined.member_id());
      commit.set_generation(joined.generation());
      commit.set_topic(topic);
      for (int p = 0; p < kPartitions; ++p) {
        v1::PartitionOffsetCommit* o = commit.add_offsets();
        o->set_partition(p);
        o->set_offset(1);
      }
      v1::CommitOffsetsResponse response;
      grpc::Status s = groups_->CommitOffsets(Deadline().get(), commit, &response);
      ASSERT_TRUE(s.ok()) << Describe(s);
    }
  }

  constexpr int kScrapes = 20;
  std::vector<double> ms;
  size_t bytes = 0;
  Samples samples;
  for (int i = 0; i < kScrapes; ++i) {
    const absl::Time start = absl::Now();
    absl::StatusOr<HttpResponse> r = HttpRequest(metrics_address_, "GET", "/metrics");
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200);
    bytes = r->body.size();
    if (i == 0) samples = ParseExposition(r->body);
  }
  // Every group's lag series is there: 20 groups x 5 topics x 8 partitions, each lag 2 - 1.
  int lag_series = 0;
  for (const auto& [key, value] : samples) {
    if (absl::StartsWith(key, "evlog_group_lag{")) {
      ++lag_series;
      EXPECT_EQ(value, 1) << key;
    }
  }
  EXPECT_EQ(lag_series, kGroups * kTopicsPerGroup * kPartitions);
  std::sort(ms.begin(), ms.end());
  std::printf(
      "scrape cost (%d topics x %d partitions, %d groups, %d lag series): %zu bytes, %zu "
      "samples; over %d scrapes (HTTP round trip on loopback): min %.2f ms, median %.2f ms, "
      "max %.2f ms\n",
      kTopics, kPartitions, kGroups, lag_series, bytes, samples.size(), kScrapes, ms.front(),
      ms[ms.size() / 2], ms.back());
}

}  // namespace
}  // namespace evlog::testing
