#include "client/reader.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include <grpcpp/client_context.h>

#include "absl/strings/str_cat.h"
#include "client/channel.h"
#include "client/grpc_status.h"
#include "client/watchdog.h"
#include "evlog/v1/evlog.grpc.pb.h"
#include "storage/batch_codec.h"

namespace evlog::client {
namespace {

class ReadStreamImpl final : public ReadStream {
 public:
  ReadStreamImpl(evlog::v1::ReaderService::Stub* stub, Watchdog* watchdog,
                 const ReaderOptions& options, const ReadSpec& spec)
      : watchdog_(watchdog), options_(options), topic_(spec.topic) {
    evlog::v1::ReadRequest request;
    request.set_topic(spec.topic);
    request.set_partition(spec.partition);
    switch (spec.start) {
      case ReadSpec::kOffset:
        request.set_offset(spec.offset);
        break;
      case ReadSpec::kTimestamp:
        request.set_timestamp_ms(spec.timestamp_ms);
        break;
      case ReadSpec::kEarliest:
        request.set_position(evlog::v1::START_POSITION_EARLIEST);
        break;
      case ReadSpec::kLatest:
        request.set_position(evlog::v1::START_POSITION_LATEST);
        break;
    }
    if (spec.end_offset.has_value()) request.set_end_offset(*spec.end_offset);
    request.set_max_records(spec.max_records);
    request.set_follow(spec.follow);
    request.set_max_bytes_per_response(options.max_bytes_per_response);
    request.set_raw_batches(options.raw_batches);
    if (spec.follow) {
      request.set_heartbeat_ms(static_cast<int32_t>(
          std::max<int64_t>(100, absl::ToInt64Milliseconds(options.heartbeat))));
    }
    SetDeadline(&context_, spec.deadline);
    watch_ = watchdog_->Watch(&context_, absl::Now() + options_.idle_timeout);
    stream_ = stub->Read(&context_, request);
  }

  ~ReadStreamImpl() override {
    if (!finished_) {
      Cancel();
      while (stream_->Read(&response_)) {
      }
      stream_->Finish().ok();
    }
    watchdog_->Unwatch(watch_);
  }

  bool Next(std::vector<ConsumedRecord>* records) override {
    records->clear();
    if (!decode_error_.ok()) return false;
    // One response object for the whole stream: Clear() keeps its strings' and repeated
    // fields' memory, so steady-state reading allocates nothing per response for it.
    while (stream_->Read(&response_)) {
      watchdog_->Arm(watch_, absl::Now() + options_.idle_timeout);
      high_watermark_ = response_.high_watermark();
      if (response_.raw_batches_size() > 0) {
        if (absl::Status s = DecodeRaw(records); !s.ok()) {
          records->clear();
          decode_error_ = s;
          context_.TryCancel();
          return false;
        }
        next_offset_ = response_.next_offset();
        if (records->empty()) continue;  // nothing to deliver (cannot happen with evlogd)
        return true;
      }
      next_offset_ = response_.next_offset();
      if (response_.records_size() == 0) continue;  // a heartbeat
      records->reserve(response_.records_size());
      for (auto& r : *response_.mutable_records()) {
        ConsumedRecord& out = records->emplace_back();
        out.topic = topic_;
        out.partition = response_.partition();
        out.offset = r.offset();
        out.timestamp_ms = r.timestamp_ms();
        out.key = std::move(*r.mutable_key());
        out.value = std::move(*r.mutable_value());
        for (auto& h : *r.mutable_headers()) {
          out.headers.push_back({std::move(*h.mutable_key()), std::move(*h.mutable_value())});
        }
      }
      return true;
    }
    return false;
  }

  int64_t next_offset() const override { return next_offset_; }
  int64_t high_watermark() const override { return high_watermark_; }

  void Cancel() override {
    cancelled_.store(true);
    context_.TryCancel();
  }

  absl::Status Finish() override {
    finished_ = true;
    grpc::Status status = stream_->Finish();
    const bool idle = watchdog_->Unwatch(watch_);
    watch_ = 0;
    if (!decode_error_.ok()) return decode_error_;
    if (status.ok()) return absl::OkStatus();
    if (idle) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no answer from the server for ", absl::FormatDuration(options_.idle_timeout),
          " while reading ", topic_, "; it may be overloaded or unreachable"));
    }
    if (cancelled_.load() && status.error_code() == grpc::StatusCode::CANCELLED) {
      return absl::OkStatus();
    }
    return FromGrpcStatus(status, &context_);
  }

 private:
  // Checks every raw batch of response_ and appends the records in [first_offset,
  // next_offset) to `records`. Errors: DATA_LOSS for a batch failing its check, or batches
  // that do not hold exactly that range (the response is then not used at all).
  absl::Status DecodeRaw(std::vector<ConsumedRecord>* records) {
    const int64_t first = response_.first_offset();
    const int64_t next = response_.next_offset();
    if (next < first || (next_offset_ >= 0 && first != next_offset_)) {
      return absl::DataLossError(absl::StrCat(
          "the server sent ", topic_, ":", response_.partition(), " offsets [", first, ", ", next,
          ") after offset ", next_offset_, "; expected them to follow on"));
    }
    records->reserve(static_cast<size_t>(next - first));
    for (const evlog::v1::RawBatch& batch : response_.raw_batches()) {
      const absl::string_view data(batch.data());
      absl::StatusOr<storage::BatchHeader> header = storage::VerifyBatch(data);
      if (!header.ok()) {
        return absl::DataLossError(absl::StrCat("batch at offset ", batch.base_offset(), " of ",
                                                topic_, ":", response_.partition(),
                                                " arrived damaged: ", header.status().message()));
      }
      absl::Status s = storage::VisitRecords(
          data, batch.base_offset(), first, next, [&](const storage::RecordView& r) {
            ConsumedRecord& out = records->emplace_back();
            out.topic = topic_;
            out.partition = response_.partition();
            out.offset = r.offset;
            out.timestamp_ms = r.timestamp_ms;
            out.key.assign(r.key.data(), r.key.size());
            out.value.assign(r.value.data(), r.value.size());
            if (!r.headers.empty()) {
              out.headers.reserve(r.headers.size());
              for (const auto& [key, value] : r.headers) {
                out.headers.push_back(
                    {std::string(key.data(), key.size()), std::string(value.data(), value.size())});
              }
            }
          });
      if (!s.ok()) {
        return absl::DataLossError(absl::StrCat("batch at offset ", batch.base_offset(), " of ",
                                                topic_, ":", response_.partition(), ": ",
                                                s.message()));
      }
    }
    // The delivered records must be exactly [first, next), dense.
    const int64_t expected = next - first;
    const int64_t got = static_cast<int64_t>(records->size());
    if (got != expected ||
        (got > 0 && (records->front().offset != first || records->back().offset != next - 1))) {
      return absl::DataLossError(absl::StrCat("the server's batches of ", topic_, ":",
                                              response_.partition(), " do not hold offsets [",
                                              first, ", ", next, ")"));
    }
    return absl::OkStatus();
  }

  Watchdog* watchdog_;
  ReaderOptions options_;
  std::string topic_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<evlog::v1::ReadResponse>> stream_;
  evlog::v1::ReadResponse response_;  // reused for every response of the stream
  absl::Status decode_error_;         // a raw batch that failed its check ends the stream
  uint64_t watch_ = 0;
  int64_t next_offset_ = -1;
  int64_t high_watermark_ = -1;
  std::atomic<bool> cancelled_{false};
  bool finished_ = false;
};

class ReaderImpl final : public Reader {
 public:
  ReaderImpl(std::shared_ptr<grpc::Channel> channel, const ReaderOptions& options)
      : channel_(std::move(channel)),
        stub_(evlog::v1::ReaderService::NewStub(channel_)),
        options_(options) {}

  std::unique_ptr<ReadStream> Open(const ReadSpec& spec) override {
    return std::make_unique<ReadStreamImpl>(stub_.get(), &watchdog_, options_, spec);
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<evlog::v1::ReaderService::Stub> stub_;
  ReaderOptions options_;
  Watchdog watchdog_;
};

}  // namespace

std::unique_ptr<Reader> Reader::Create(const std::string& target, const ReaderOptions& options) {
  return Create(CreateEvlogChannel(target), options);
}

std::unique_ptr<Reader> Reader::Create(std::shared_ptr<grpc::Channel> channel,
                                       const ReaderOptions& options) {
  return std::make_unique<ReaderImpl>(std::move(channel), options);
}

}  // namespace evlog::client
