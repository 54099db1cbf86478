#include "server/read_service.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/raw_read.h"
#include "server/status_mapping.h"
#include "server/validation.h"

namespace evlog::server {
namespace {

using evlog::v1::ReadRequest;
using evlog::v1::ReadResponse;

constexpr int64_t kDefaultResponseBytes = 1 << 20;
// 4 MiB less a margin, so that a full response fits gRPC's default 4 MiB receive limit.
constexpr int64_t kMaxResponseBytes = (4 << 20) - (64 << 10);
constexpr int64_t kResponseOverheadBytes = 64;  // partition and offsets of a ReadResponse
constexpr int64_t kMinHeartbeatMs = 100;
// Longest single wait in follow mode: bounds how late cancellation and draining are noticed.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(100);

// The offset a read starts at, from the request's start point.
// Errors: as LogStore::DescribeTopic / OffsetForTimestamp, OUT_OF_RANGE for a partition
// beyond the topic's.
absl::StatusOr<int64_t> ResolveStart(const storage::LogStore& store, const ReadRequest& request) {
  switch (request.start_case()) {
    case ReadRequest::kOffset:
      return request.offset();
    case ReadRequest::kTimestampMs:
      return store.OffsetForTimestamp(request.topic(), request.partition(), request.timestamp_ms());
    default: {
      absl::StatusOr<storage::TopicInfo> info = store.DescribeTopic(request.topic());
      if (!info.ok()) return info.status();
      if (request.partition() >= static_cast<int32_t>(info->partitions.size())) {
        return absl::OutOfRangeError(
            absl::StrCat("partition ", request.partition(), " does not exist; topic \"",
                         request.topic(), "\" has partitions 0..", info->partitions.size() - 1));
      }
      const storage::PartitionInfo& p = info->partitions[request.partition()];
      return request.position() == evlog::v1::START_POSITION_EARLIEST ? p.start_offset
                                                                      : p.end_offset;
    }
  }
}

void ToProto(storage::Record&& in, evlog::v1::Record* out) {
  out->set_offset(in.offset);
  out->set_timestamp_ms(in.timestamp_ms);
  *out->mutable_key() = std::move(in.key);
  *out->mutable_value() = std::move(in.value);
  for (storage::RecordHeader& h : in.headers) {
    evlog::v1::Header* header = out->add_headers();
    *header->mutable_key() = std::move(h.key);
    *header->mutable_value() = std::move(h.value);
  }
}

// Bytes a record adds to a ReadResponse: its serialized size plus tag and length prefix.
int64_t EncodedSize(const evlog::v1::Record& record) {
  return static_cast<int64_t>(record.ByteSizeLong()) + 6;
}

// One Read call's loop state.
class PartitionReadLoop {
 public:
  PartitionReadLoop(const storage::LogStore& store, const DrainController& drain,
                    grpc::ServerContext* context, const ReadRequest& request,
                    grpc::ServerWriter<ReadResponse>* writer, ServerMetrics* metrics)
      : store_(store),
        drain_(drain),
        context_(context),
        request_(request),
        writer_(writer),
        metrics_(metrics) {
    response_budget_ = request.max_bytes_per_response() == 0
                           ? kDefaultResponseBytes
                           : std::min<int64_t>(request.max_bytes_per_response(), kMaxResponseBytes);
    if (request.heartbeat_ms() > 0) {
      heartbeat_ = absl::Milliseconds(std::max<int64_t>(request.heartbeat_ms(), kMinHeartbeatMs));
    }
    remaining_ =
        request.max_records() == 0 ? std::numeric_limits<int64_t>::max() : request.max_records();
    end_offset_ =
        request.has_end_offset() ? request.end_offset() : std::numeric_limits<int64_t>::max();
  }

  absl::Status Run() {
    absl::StatusOr<int64_t> start = ResolveStart(store_, request_);
    if (!start.ok()) return start.status();
    next_offset_ = *start;
    bool first = true;
    last_send_ = absl::Now();
    while (true) {
      if (remaining_ == 0 || next_offset_ >= end_offset_) return absl::OkStatus();
      if (context_->IsCancelled()) return absl::CancelledError("the client cancelled the read");
      if (drain_.draining()) {
        return absl::UnavailableError(
            absl::StrCat("evlogd is shutting down; resume reading at offset ", next_offset_,
                         " on a server that is up"));
      }
      storage::ReadLimits limits;
      limits.max_bytes = static_cast<uint64_t>(response_budget_);
      limits.max_records = std::min<int64_t>(remaining_, 10000);
      limits.end_offset = end_offset_ == std::numeric_limits<int64_t>::max() ? -1 : end_offset_;
      if (request_.raw_batches() && next_offset_ >= decode_until_) {
        absl::StatusOr<storage::RawReadResult> raw = store_.ReadBatches(
            request_.topic(), request_.partition(), next_offset_, limits, &cursor_);
        if (!raw.ok()) return raw.status();
        start_offset_ = raw->start_offset;
        high_watermark_ = raw->high_watermark;
        if (first && !request_.follow()) end_offset_ = std::min(end_offset_, raw->high_watermark);
        first = false;
        if (!raw->batches.empty()) {
          if (absl::Status s = SendRaw(std::move(raw->batches)); !s.ok()) return s;
          continue;
        }
        if (!request_.follow()) return absl::OkStatus();
        if (absl::Status s = WaitForMore(); !s.ok()) return s;
        continue;
      }
      // A batch too large to go whole in a response goes as records (see SendRaw).
      if (next_offset_ < decode_until_) {
        limits.end_offset =
            limits.end_offset < 0 ? decode_until_ : std::min(limits.end_offset, decode_until_);
      }
      absl::StatusOr<storage::ReadResult> read =
          store_.Read(request_.topic(), request_.partition(), next_offset_, limits);
      if (!read.ok()) return read.status();
      start_offset_ = read->start_offset;
      high_watermark_ = read->high_watermark;
      if (first && !request_.follow()) {
        // Without follow, stop at the end as of the call's start.
        end_offset_ = std::min(end_offset_, read->high_watermark);
      }
      first = false;
      if (!read->records.empty()) {
        if (absl::Status s = Send(std::move(read->records)); !s.ok()) return s;
        continue;
      }
      if (!request_.follow()) return absl::OkStatus();
      if (absl::Status s = WaitForMore(); !s.ok()) return s;
    }
  }

 private:
  // Writes `records` (dense from next_offset_) as responses of at most response_budget_
  // bytes, trimming to remaining_ and end_offset_.
  absl::Status Send(std::vector<storage::Record> records) {
    ReadResponse response;
    int64_t bytes = kResponseOverheadBytes;
    for (storage::Record& record : records) {
      if (remaining_ == 0 || record.offset >= end_offset_) break;
      if (record.offset < next_offset_) continue;  // defensive: already sent
      evlog::v1::Record encoded;
      ToProto(std::move(record), &encoded);
      const int64_t size = EncodedSize(encoded);
      if (response.records_size() > 0 && bytes + size > response_budget_) {
        if (absl::Status s = Write(&response); !s.ok()) return s;
        response.Clear();
        bytes = kResponseOverheadBytes;
      }
      bytes += size;
      next_offset_ = encoded.offset() + 1;
      --remaining_;
      ++unsent_records_;
      unsent_bytes_ += RecordSize(encoded);
      *response.add_records() = std::move(encoded);
    }
    if (response.records_size() > 0) return Write(&response);
    return absl::OkStatus();
  }

  // Raw reads: writes whole stored `batches` (dense, the first holding next_offset_) as
  // responses of at most response_budget_ batch bytes (at least one batch each), telling the
  // client by first_offset/next_offset which records to deliver after trimming to remaining_
  // and end_offset_. A batch too large for any response (over kMaxResponseBytes) is not sent:
  // decode_until_ makes the loop send its records through the records path instead.
  absl::Status SendRaw(std::vector<storage::RawBatch> batches) {
    ReadResponse response;
    int64_t bytes = kResponseOverheadBytes;
    for (storage::RawBatch& batch : batches) {
      if (remaining_ == 0 || next_offset_ >= end_offset_) break;
      const int64_t batch_end = batch.base_offset + StoredBatchRecordCount(batch.bytes);
      if (batch_end <= next_offset_) continue;  // defensive: already sent
      const int64_t size = static_cast<int64_t>(batch.bytes.size()) + 16;  // + base, tags
      if (size + kResponseOverheadBytes > kMaxResponseBytes) {
        decode_until_ = batch_end;
        break;
      }
      if (response.raw_batches_size() > 0 && bytes + size > response_budget_) {
        if (absl::Status s = Write(&response); !s.ok()) return s;
        response.Clear();
        bytes = kResponseOverheadBytes;
      }
      if (response.raw_batches_size() == 0) response.set_first_offset(next_offset_);
      int64_t deliver_end = std::min(batch_end, end_offset_);
      if (deliver_end - next_offset_ > remaining_) deliver_end = next_offset_ + remaining_;
      absl::StatusOr<int64_t> record_bytes =
          RecordBytesInRange(batch.bytes, batch.base_offset, next_offset_, deliver_end);
      if (!record_bytes.ok()) {
        return absl::DataLossError(absl::StrCat(
            "topic '", request_.topic(), "' partition ", request_.partition(), " batch at offset ",
            batch.base_offset, ": ", record_bytes.status().message()));
      }
      unsent_bytes_ += *record_bytes;
      unsent_records_ += deliver_end - next_offset_;
      remaining_ -= deliver_end - next_offset_;
      next_offset_ = deliver_end;
      bytes += size;
      evlog::v1::RawBatch* out = response.add_raw_batches();
      out->set_base_offset(batch.base_offset);
      out->set_data(std::move(batch.bytes));
    }
    if (response.raw_batches_size() > 0) return Write(&response);
    return absl::OkStatus();
  }

  // Waits up to one slice for data at next_offset_, sending a heartbeat when one is due.
  absl::Status WaitForMore() {
    cursor_.Reset();  // it cannot see what arrives, and would pin storage while we wait
    absl::Time deadline = absl::Now() + kWaitSlice;
    if (heartbeat_ > absl::ZeroDuration()) deadline = std::min(deadline, last_send_ + heartbeat_);
    if (context_->deadline() != std::chrono::system_clock::time_point::max()) {
      deadline = std::min(deadline, absl::FromChrono(context_->deadline()));
    }
    absl::StatusOr<bool> ready =
        store_.WaitForData(request_.topic(), request_.partition(), next_offset_, deadline);
    if (!ready.ok()) return ready.status();
    if (!*ready && heartbeat_ > absl::ZeroDuration() && absl::Now() >= last_send_ + heartbeat_) {
      ReadResponse heartbeat;
      return Write(&heartbeat);
    }
    return absl::OkStatus();
  }

  absl::Status Write(ReadResponse* response) {
    response->set_partition(request_.partition());
    response->set_next_offset(next_offset_);
    response->set_high_watermark(std::max(high_watermark_, next_offset_));
    response->set_start_offset(start_offset_);
    last_send_ = absl::Now();
    if (!writer_->Write(*response)) {
      return absl::CancelledError("the client went away during the read");
    }
    if (unsent_records_ > 0) {
      // Looked up once per call, and only for a topic that exists (records were read).
      if (topic_metrics_ == nullptr) topic_metrics_ = metrics_->ForTopic(request_.topic());
      topic_metrics_->records_out->Add(static_cast<uint64_t>(unsent_records_));
      topic_metrics_->bytes_out->Add(static_cast<uint64_t>(unsent_bytes_));
    }
    unsent_records_ = 0;
    unsent_bytes_ = 0;
    return absl::OkStatus();
  }

  const storage::LogStore& store_;
  const DrainController& drain_;
  grpc::ServerContext* const context_;
  const ReadRequest& request_;
  grpc::ServerWriter<ReadResponse>* const writer_;
  ServerMetrics* const metrics_;
  TopicMetrics* topic_metrics_ = nullptr;  // this call's topic, once records went out
  int64_t unsent_records_ = 0;             // records in the response being built
  int64_t unsent_bytes_ = 0;               // their record bytes
  // Raw reads: offsets below this go through the records path (a batch too large to send
  // whole); -1 when there is none.
  int64_t decode_until_ = -1;
  // Where the raw reads left off in storage, so that reading on does not seek again.
  storage::ReadCursor cursor_;

  int64_t response_budget_ = kDefaultResponseBytes;
  absl::Duration heartbeat_ = absl::ZeroDuration();
  int64_t remaining_ = 0;    // records still to send
  int64_t end_offset_ = 0;   // stop before this offset
  int64_t next_offset_ = 0;  // next offset to send
  int64_t start_offset_ = 0;
  int64_t high_watermark_ = 0;
  absl::Time last_send_;
};

}  // namespace

ReaderServiceImpl::ReaderServiceImpl(storage::LogStore* store, DrainController* drain,
                                     const EdgeLimits& limits, ServerMetrics* metrics)
    : store_(store),
      drain_(drain),
      limits_(limits),
      metrics_(metrics),
      stream_slots_(limits.max_read_streams) {}

grpc::Status ReaderServiceImpl::Read(grpc::ServerContext* context, const ReadRequest* request,
                                     grpc::ServerWriter<ReadResponse>* writer) {
  DrainController::CallScope call(drain_);
  if (absl::Status s = ValidateReadRequest(*request); !s.ok()) {
    metrics_->Rejected(kRejectInvalid);
    return ToGrpcStatus(s);
  }
  if (drain_->draining()) {
    metrics_->Rejected(kRejectShuttingDown);
    return ToGrpcStatus(ShuttingDownError());
  }
  if (!stream_slots_.TryAcquire()) {
    const absl::Status refused = absl::ResourceExhaustedError(absl::StrCat(
        "too many read streams are open (--max-read-streams=", stream_slots_.capacity(),
        "); retry later"));
    AddRetryHint(refused, limits_.retry_after_ms, context);
    metrics_->Rejected(kRejectStreamLimit);
    return ToGrpcStatus(refused);
  }
  absl::Cleanup release = [this] { stream_slots_.Release(); };
  PartitionReadLoop loop(*store_, *drain_, context, *request, writer, metrics_);
  return ToGrpcStatus(loop.Run());
}

}  // namespace evlog::server
