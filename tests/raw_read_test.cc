// Raw reads (ReadRequest.raw_batches) against a real evlogd: the batches arrive byte for byte
// in the stored format, first_offset/next_offset trim them to exactly the records the decoded
// path delivers (start points, end_offset, max_records, response bounds, follow), a stored
// batch that fails its CRC is reported as DATA_LOSS and never sent, and the client library's
// Reader hands out the same records whether it asks for raw batches or for records, and ends
// with DATA_LOSS (handing out nothing of it) when a batch arrives damaged (a fake server).
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/batch_codec.h"
#include "storage/testing/corrupt_batch.h"
#include "tests/rpc_test_util.h"
#include "tests/testing/server_process.h"

namespace evlog::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using v1::ReadRequest;
using v1::ReadResponse;

// A record as delivered, for comparing the two read paths.
struct Delivered {
  int64_t offset = 0;
  int64_t timestamp_ms = 0;
  std::string key;
  std::string value;
  std::vector<std::pair<std::string, std::string>> headers;
  bool operator==(const Delivered&) const = default;
};

// Everything one Read call delivered, decoding raw batches as a client must: check each batch,
// keep the records in [first_offset, next_offset).
struct RawOutcome {
  grpc::Status status;
  std::vector<Delivered> records;
  std::vector<ReadResponse> responses;  // with records or batches (heartbeats left out)
  std::string error;                    // a check that failed, if any
};

void DecodeInto(const ReadResponse& response, RawOutcome* out) {
  if (response.raw_batches_size() == 0) {
    for (const v1::Record& r : response.records()) {
      Delivered d{r.offset(), r.timestamp_ms(), r.key(), r.value(), {}};
      for (const v1::Header& h : r.headers()) d.headers.emplace_back(h.key(), h.value());
      out->records.push_back(std::move(d));
    }
    return;
  }
  for (const v1::RawBatch& batch : response.raw_batches()) {
    absl::StatusOr<storage::BatchHeader> header = storage::VerifyBatch(batch.data());
    if (!header.ok()) {
      out->error = header.status().ToString();
      return;
    }
    absl::Status s = storage::VisitRecords(
        batch.data(), batch.base_offset(), response.first_offset(), response.next_offset(),
        [&](const storage::RecordView& r) {
          Delivered d{r.offset, r.timestamp_ms, std::string(r.key), std::string(r.value), {}};
          for (const auto& [k, v] : r.headers)
            d.headers.emplace_back(std::string(k), std::string(v));
          out->records.push_back(std::move(d));
        });
    if (!s.ok()) out->error = s.ToString();
  }
}

RawOutcome ReadAllRaw(EvlogStubs& stubs, ReadRequest request, bool raw = true) {
  request.set_raw_batches(raw);
  RawOutcome out;
  auto context = Deadline(absl::Seconds(20));
  auto reader = stubs.reader->Read(context.get(), request);
  ReadResponse response;
  while (reader->Read(&response)) {
    if (response.raw_batches_size() == 0 && response.records_size() == 0) continue;
    DecodeInto(response, &out);
    out.responses.push_back(response);
  }
  out.status = reader->Finish();
  return out;
}

std::vector<int64_t> Offsets(const std::vector<Delivered>& records) {
  std::vector<int64_t> offsets;
  for (const Delivered& d : records) offsets.push_back(d.offset);
  return offsets;
}

class RawReadTest : public SharedServerTest {};

TEST_F(RawReadTest, BatchesAreTrimmedToTheRequestedRange) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic).ok());
  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 0, {"0", "1", "2", "3", "4"})).status.ok());
  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 0, {"5", "6", "7"})).status.ok());

  // Mid-batch start and end: both batches go whole, the client keeps [3, 6).
  ReadRequest request = ReadFrom(topic, 0, 3);
  request.set_end_offset(6);
  RawOutcome ranged = ReadAllRaw(*stubs_, request);
  ASSERT_TRUE(ranged.status.ok()) << Describe(ranged.status);
  ASSERT_EQ(ranged.error, "");
  EXPECT_THAT(Offsets(ranged.records), ElementsAre(3, 4, 5));
  ASSERT_EQ(ranged.responses.size(), 1u);
  const ReadResponse& response = ranged.responses[0];
  EXPECT_EQ(response.records_size(), 0);
  ASSERT_EQ(response.raw_batches_size(), 2);
  EXPECT_EQ(response.raw_batches(0).base_offset(), 0);
  EXPECT_EQ(response.raw_batches(1).base_offset(), 5);
  EXPECT_EQ(response.first_offset(), 3);
  EXPECT_EQ(response.next_offset(), 6);  // what to ask next, after trimming
  EXPECT_EQ(response.high_watermark(), 8);

  // max_records ends inside the first batch: one batch, next_offset after the second record.
  request = ReadFrom(topic, 0, 1);
  request.set_max_records(2);
  RawOutcome limited = ReadAllRaw(*stubs_, request);
  ASSERT_TRUE(limited.status.ok());
  EXPECT_THAT(Offsets(limited.records), ElementsAre(1, 2));
  ASSERT_EQ(limited.responses.size(), 1u);
  EXPECT_EQ(limited.responses[0].raw_batches_size(), 1);
  EXPECT_EQ(limited.responses[0].next_offset(), 3);

  // Start positions resolved by the server are told by first_offset.
  request = ReadFrom(topic, 0, 0);
  request.set_position(v1::START_POSITION_EARLIEST);
  EXPECT_THAT(Offsets(ReadAllRaw(*stubs_, request).records), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
  request.set_position(v1::START_POSITION_LATEST);
  RawOutcome latest = ReadAllRaw(*stubs_, request);
  EXPECT_TRUE(latest.status.ok());
  EXPECT_TRUE(latest.records.empty());
  // At the end offset exactly: an empty, successful read.
  RawOutcome at_end = ReadAllRaw(*stubs_, ReadFrom(topic, 0, 8));
  EXPECT_TRUE(at_end.status.ok());
  EXPECT_TRUE(at_end.records.empty());
}

TEST_F(RawReadTest, SameRecordsAsTheDecodedPath) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic).ok());
  for (int b = 0; b < 5; ++b) {
    v1::ProduceRequest batch = MakeBatch(topic, 0, {absl::StrCat("v", b, "a"), "", "x"}, "key");
    batch.mutable_records(0)->set_timestamp_ms(1700000000000 + b);
    v1::Header* h = batch.mutable_records(1)->add_headers();
    h->set_key("h");
    h->set_value(std::string("\0\1binary", 8));
    ASSERT_TRUE(ProduceOne(*stubs_, batch).status.ok());
  }
  for (int64_t from : {0, 1, 7, 14}) {
    ReadRequest request = ReadFrom(topic, 0, from);
    RawOutcome raw = ReadAllRaw(*stubs_, request, /*raw=*/true);
    RawOutcome decoded = ReadAllRaw(*stubs_, request, /*raw=*/false);
    ASSERT_TRUE(raw.status.ok());
    ASSERT_TRUE(decoded.status.ok());
    EXPECT_EQ(raw.error, "");
    EXPECT_EQ(raw.records.size(), static_cast<size_t>(15 - from));
    EXPECT_TRUE(raw.records == decoded.records) << "from " << from;
  }
}

TEST_F(RawReadTest, ResponsesStayWithinTheByteBoundWithAtLeastOneBatch) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic).ok());
  const std::string value(10000, 'v');
  for (int b = 0; b < 30; ++b) {
    ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 0, {value, value})).status.ok());
  }
  // A batch larger than the bound goes alone.
  ASSERT_TRUE(
      ProduceOne(*stubs_, MakeBatch(topic, 0, std::vector<std::string>(10, value))).status.ok());
  ReadRequest request = ReadFrom(topic, 0, 0);
  request.set_max_bytes_per_response(64 << 10);
  RawOutcome out = ReadAllRaw(*stubs_, request);
  ASSERT_TRUE(out.status.ok());
  ASSERT_EQ(out.error, "");
  EXPECT_EQ(out.records.size(), 70u);
  int64_t next = 0;
  for (const ReadResponse& r : out.responses) {
    ASSERT_GE(r.raw_batches_size(), 1);
    if (r.raw_batches_size() > 1) {
      EXPECT_LE(r.ByteSizeLong(), 64u << 10);
    }
    EXPECT_EQ(r.first_offset(), next);
    next = r.next_offset();
  }
  EXPECT_EQ(next, 70);
  EXPECT_GE(out.responses.size(), 30 * 2 * 10000 / (64 << 10) + 1);
  EXPECT_EQ(out.responses.back().raw_batches_size(), 1);  // the large batch, alone
}

TEST_F(RawReadTest, FollowDeliversNewBatchesAndHeartbeats) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic).ok());
  ReadRequest request = ReadFrom(topic, 0, 0);
  request.set_follow(true);
  request.set_raw_batches(true);
  request.set_heartbeat_ms(100);
  request.set_end_offset(4);
  auto context = Deadline(absl::Seconds(30));
  auto reader = stubs_->reader->Read(context.get(), request);
  ReadResponse response;
  ASSERT_TRUE(reader->Read(&response));  // a heartbeat on the empty partition
  EXPECT_EQ(response.raw_batches_size(), 0);
  EXPECT_EQ(response.next_offset(), 0);

  RawOutcome out;
  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 0, {"a", "b"})).status.ok());
  while (out.records.size() < 2 && reader->Read(&response)) DecodeInto(response, &out);
  ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 0, {"c", "d", "e"})).status.ok());
  while (reader->Read(&response)) DecodeInto(response, &out);
  EXPECT_TRUE(reader->Finish().ok());  // end_offset reached
  EXPECT_EQ(out.error, "");
  std::vector<std::string> values;
  for (const Delivered& d : out.records) values.push_back(d.value);
  EXPECT_THAT(values, ElementsAre("a", "b", "c", "d"));  // "e" is past end_offset
}

TEST_F(RawReadTest, ClientReaderHandsOutTheSameRecordsEitherWay) {
  const std::string topic = TopicName();
  ASSERT_TRUE(CreateTopic(*stubs_, topic).ok());
  std::vector<std::string> values;
  for (int b = 0; b < 20; ++b) {
    std::vector<std::string> batch;
    for (int i = 0; i < 50; ++i) batch.push_back(absl::StrCat("value-", b, "-", i));
    ASSERT_TRUE(ProduceOne(*stubs_, MakeBatch(topic, 0, batch, "k")).status.ok());
    values.insert(values.end(), batch.begin(), batch.end());
  }
  auto read = [&](bool raw, int64_t from, std::optional<int64_t> end) {
    client::ReaderOptions options;
    options.raw_batches = raw;
    options.max_bytes_per_response = 4096;
    auto reader = client::Reader::Create(server_->address(), options);
    auto stream = reader->Open({.topic = topic, .partition = 0, .offset = from, .end_offset = end});
    std::vector<client::ConsumedRecord> all, records;
    while (stream->Next(&records)) all.insert(all.end(), records.begin(), records.end());
    EXPECT_TRUE(stream->Finish().ok());
    EXPECT_EQ(stream->next_offset(), all.empty() ? -1 : all.back().offset + 1);
    return all;
  };
  for (auto [from, end] : {std::pair<int64_t, std::optional<int64_t>>{0, std::nullopt},
                           {37, 512},
                           {999, std::nullopt}}) {
    std::vector<client::ConsumedRecord> raw = read(true, from, end);
    EXPECT_EQ(raw, read(false, from, end));
    const int64_t stop = end.value_or(1000);
    ASSERT_EQ(raw.size(), static_cast<size_t>(stop - from));
    for (size_t i = 0; i < raw.size(); ++i) {
      EXPECT_EQ(raw[i].topic, topic);
      EXPECT_EQ(raw[i].offset, from + static_cast<int64_t>(i));
      EXPECT_EQ(raw[i].key, "k");
      EXPECT_EQ(raw[i].value, values[from + i]);
    }
  }
}

TEST(RawReadLargeBatchTest, ABatchTooLargeForAResponseComesAsRecords) {
  auto server = ServerProcess::Start({.extra_flags = {"--max-batch-bytes=8388608"}});
  ASSERT_TRUE(server.ok()) << server.status();
  EvlogStubs stubs((*server)->address());
  ASSERT_TRUE(CreateTopic(stubs, "t").ok());
  const std::string big(900 << 10, 'b');
  ASSERT_TRUE(ProduceOne(stubs, MakeBatch("t", 0, {"s0"})).status.ok());
  ASSERT_TRUE(ProduceOne(stubs, MakeBatch("t", 0, std::vector<std::string>(6, big))).status.ok());
  ASSERT_TRUE(ProduceOne(stubs, MakeBatch("t", 0, {"s7", "s8"})).status.ok());

  RawOutcome out = ReadAllRaw(stubs, ReadFrom("t", 0, 0));
  ASSERT_TRUE(out.status.ok()) << Describe(out.status);
  ASSERT_EQ(out.error, "");
  EXPECT_THAT(Offsets(out.records), ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8));
  EXPECT_EQ(out.records[3].value, big);
  // Raw, then the 5.4 MB batch as records (no response may exceed gRPC's 4 MiB default),
  // then raw again.
  ASSERT_GE(out.responses.size(), 3u);
  EXPECT_GT(out.responses.front().raw_batches_size(), 0);
  EXPECT_GT(out.responses[1].records_size(), 0);
  EXPECT_GT(out.responses.back().raw_batches_size(), 0);
  for (const ReadResponse& r : out.responses) EXPECT_LT(r.ByteSizeLong(), 4u << 20);
}

TEST(RawReadCorruptionTest, ACorruptedStoredBatchIsReportedNotDelivered) {
  auto server = ServerProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  {
    EvlogStubs stubs((*server)->address());
    ASSERT_TRUE(CreateTopic(stubs, "t").ok());
    ASSERT_TRUE(ProduceOne(stubs, MakeBatch("t", 0, {"a0", "a1", "a2"})).status.ok());
    ASSERT_TRUE(ProduceOne(stubs, MakeBatch("t", 0, {"b3", "b4", "b5"})).status.ok());
  }
  ASSERT_TRUE((*server)->Terminate().ok());
  ASSERT_TRUE(storage::testing::CorruptStoredBatch((*server)->data_dir(), 1, 0, 3).ok());
  ASSERT_TRUE((*server)->Restart().ok());
  EvlogStubs stubs((*server)->address());

  // The intact first batch is delivered; the corrupted one never leaves the server.
  RawOutcome out = ReadAllRaw(stubs, ReadFrom("t", 0, 0));
  EXPECT_EQ(out.status.error_code(), grpc::StatusCode::DATA_LOSS) << Describe(out.status);
  EXPECT_THAT(out.status.error_message(), HasSubstr("CRC"));
  EXPECT_EQ(out.error, "");
  EXPECT_THAT(Offsets(out.records), ElementsAre(0, 1, 2));
  for (const ReadResponse& r : out.responses) {
    for (const v1::RawBatch& b : r.raw_batches()) EXPECT_EQ(b.base_offset(), 0);
  }

  RawOutcome from_bad = ReadAllRaw(stubs, ReadFrom("t", 0, 4));
  EXPECT_EQ(from_bad.status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_TRUE(from_bad.responses.empty());

  // The client library's Reader ends with DATA_LOSS too, after the intact records.
  auto reader = client::Reader::Create((*server)->address());
  auto stream = reader->Open({.topic = "t", .partition = 0, .offset = 0});
  std::vector<client::ConsumedRecord> all, records;
  while (stream->Next(&records)) all.insert(all.end(), records.begin(), records.end());
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(all.size(), 3u);
}

// Sends one response with a raw batch whose last byte is flipped after it was sealed (as if
// damaged on the way), then ends the call.
class DamagingReaderService final : public v1::ReaderService::Service {
 public:
  grpc::Status Read(grpc::ServerContext*, const ReadRequest* request,
                    grpc::ServerWriter<ReadResponse>* writer) override {
    std::string batch = storage::EncodeBatch(
        {{.timestamp_ms = 1, .value = "a"}, {.timestamp_ms = 2, .value = "b"}}, {}, 0);
    batch.back() ^= 0x01;
    ReadResponse response;
    response.set_partition(request->partition());
    response.set_first_offset(0);
    response.set_next_offset(2);
    response.set_high_watermark(2);
    v1::RawBatch* raw = response.add_raw_batches();
    raw->set_base_offset(0);
    raw->set_data(batch);
    writer->Write(response);
    return grpc::Status::OK;
  }
};

TEST(RawReadClientTest, ABatchDamagedOnTheWayEndsTheStreamWithDataLoss) {
  DamagingReaderService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto reader = client::Reader::Create(absl::StrCat("127.0.0.1:", port));
  auto stream = reader->Open({.topic = "t", .partition = 0, .offset = 0});
  std::vector<client::ConsumedRecord> records;
  EXPECT_FALSE(stream->Next(&records));
  EXPECT_TRUE(records.empty());  // nothing of the damaged batch is handed out
  absl::Status status = stream->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("CRC"));
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
}

}  // namespace
}  // namespace evlog::testing
