#include "server/validation.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/log_store.h"

namespace evlog::server {
namespace {

std::string Printable(absl::string_view name) {
  constexpr size_t kShown = 64;
  if (name.size() <= kShown) return std::string(name);
  return absl::StrCat(name.substr(0, kShown), "...");
}

}  // namespace

absl::Status ValidateTopicName(absl::string_view name) {
  if (storage::IsValidTopicName(name)) return absl::OkStatus();
  if (name.empty()) {
    return absl::InvalidArgumentError(
        "topic name is empty; a topic name is 1 to 249 characters from [A-Za-z0-9._-]");
  }
  return absl::InvalidArgumentError(
      absl::StrCat("invalid topic name \"", Printable(name), "\" (", name.size(),
                   " bytes); a topic name is 1 to 249 characters from [A-Za-z0-9._-]"));
}

int64_t RecordSize(const evlog::v1::Record& record) {
  int64_t size = static_cast<int64_t>(record.key().size() + record.value().size());
  for (const auto& header : record.headers()) {
    size += static_cast<int64_t>(header.key().size() + header.value().size());
  }
  return size;
}

absl::StatusOr<std::vector<storage::Record>> TakeValidBatch(evlog::v1::ProduceRequest* request,
                                                            const EdgeLimits& limits) {
  if (absl::Status s = ValidateTopicName(request->topic()); !s.ok()) return s;
  if (request->partition() < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition ", request->partition(),
                     " is invalid; give a partition number >= 0, or -1 to choose it by key hash"));
  }
  const int records = request->records_size();
  if (records == 0) {
    return absl::InvalidArgumentError("empty batch: a produce request needs at least 1 record");
  }
  if (records > limits.max_batch_records) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch has ", records, " records; at most ", limits.max_batch_records,
                     " records are allowed per request (--max-batch-records): split it"));
  }
  const int64_t batch_bytes = static_cast<int64_t>(request->ByteSizeLong());
  if (batch_bytes > limits.max_batch_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch is ", batch_bytes, " bytes serialized; at most ", limits.max_batch_bytes,
        " bytes are allowed per request (--max-batch-bytes): split it"));
  }
  for (int i = 0; i < records; ++i) {
    const evlog::v1::Record& record = request->records(i);
    if (const int64_t size = RecordSize(record); size > limits.max_record_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "record ", i, " is ", size, " bytes (key + value + headers); at most ",
          limits.max_record_bytes, " bytes are allowed per record (--max-record-bytes)"));
    }
    if (record.timestamp_ms() < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("record ", i, " has timestamp_ms ", record.timestamp_ms(),
                       "; give milliseconds since the Unix epoch, or 0 for the server's time"));
    }
    if (request->partition() == -1 && record.key() != request->records(0).key()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "record ", i,
          " has a different key than record 0; with partition -1 every record of a request "
          "must have the same key (or name the partition, computed with the documented hash)"));
    }
  }
  std::vector<storage::Record> batch;
  batch.reserve(records);
  for (evlog::v1::Record& in : *request->mutable_records()) {
    storage::Record& out = batch.emplace_back();
    out.timestamp_ms = in.timestamp_ms() == 0 ? -1 : in.timestamp_ms();
    out.key = std::move(*in.mutable_key());
    out.value = std::move(*in.mutable_value());
    out.headers.reserve(in.headers_size());
    for (evlog::v1::Header& header : *in.mutable_headers()) {
      out.headers.push_back({std::move(*header.mutable_key()), std::move(*header.mutable_value())});
    }
  }
  return batch;
}

absl::Status ValidateReadRequest(const evlog::v1::ReadRequest& request) {
  if (absl::Status s = ValidateTopicName(request.topic()); !s.ok()) return s;
  if (request.partition() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("partition ", request.partition(), " is invalid; give a partition >= 0"));
  }
  switch (request.start_case()) {
    case evlog::v1::ReadRequest::kOffset:
      if (request.offset() < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("offset ", request.offset(), " is negative; offsets start at 0"));
      }
      break;
    case evlog::v1::ReadRequest::kTimestampMs:
      if (request.timestamp_ms() < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("timestamp_ms ", request.timestamp_ms(),
                         " is negative; give milliseconds since the Unix epoch"));
      }
      break;
    case evlog::v1::ReadRequest::kPosition:
      if (request.position() != evlog::v1::START_POSITION_EARLIEST &&
          request.position() != evlog::v1::START_POSITION_LATEST) {
        return absl::InvalidArgumentError(
            "position must be START_POSITION_EARLIEST or START_POSITION_LATEST");
      }
      break;
    case evlog::v1::ReadRequest::START_NOT_SET:
      return absl::InvalidArgumentError(
          "no start point: set exactly one of offset, timestamp_ms or position");
  }
  if (request.has_end_offset() && request.end_offset() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("end_offset ", request.end_offset(), " is negative; offsets start at 0"));
  }
  if (request.has_end_offset() && request.start_case() == evlog::v1::ReadRequest::kOffset &&
      request.end_offset() < request.offset()) {
    return absl::InvalidArgumentError(absl::StrCat("end_offset ", request.end_offset(),
                                                   " is below the start offset ", request.offset(),
                                                   "; it must be >= it"));
  }
  if (request.max_records() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_records ", request.max_records(),
                                                   " is negative; give 0 (no limit) or more"));
  }
  if (request.max_bytes_per_response() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_bytes_per_response ", request.max_bytes_per_response(),
                     " is negative; give 0 (server default) or more"));
  }
  if (request.heartbeat_ms() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("heartbeat_ms ", request.heartbeat_ms(),
                                                   " is negative; give 0 (none) or more"));
  }
  return absl::OkStatus();
}

}  // namespace evlog::server
