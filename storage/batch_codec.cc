#include "storage/batch_codec.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "storage/batch_builder.h"
#include "storage/batch_format.h"
#include "storage/coding.h"
#include "storage/crc32c.h"

namespace evlog::storage {

namespace bf = batch_format;

std::string EncodeBatch(const std::vector<Record>& records, const ProducerInfo& producer,
                        int32_t leader_epoch) {
  size_t size = bf::kHeaderSize;
  for (const Record& r : records) {
    size += 16 + r.key.size() + r.value.size();
    for (const RecordHeader& h : r.headers) size += 10 + h.key.size() + h.value.size();
  }
  std::string out;
  BatchBuilder builder(&out, size);
  std::vector<BatchBuilder::Header> headers;
  for (const Record& r : records) {
    headers.clear();
    for (const RecordHeader& h : r.headers) headers.emplace_back(h.key, h.value);
    builder.Add(r.timestamp_ms, r.key, r.value, headers);
  }
  builder.Finish(producer, leader_epoch);
  return out;
}

absl::StatusOr<BatchHeader> VerifyBatch(absl::string_view batch) {
  if (batch.size() < bf::kHeaderSize) {
    return absl::DataLossError(
        absl::StrCat("batch of ", batch.size(), " bytes is shorter than its header"));
  }
  const char* p = batch.data();
  if (DecodeFixed32(p + bf::kMagicOffset) != bf::kMagic) {
    return absl::DataLossError("batch has a bad magic number");
  }
  if (static_cast<uint8_t>(p[bf::kVersionOffset]) != bf::kVersion) {
    return absl::DataLossError(absl::StrCat("batch has unknown format version ",
                                            static_cast<uint8_t>(p[bf::kVersionOffset])));
  }
  if (p[bf::kAttributesOffset] != 0 ||
      DecodeFixed16(p + bf::kHeaderSizeOffset) != bf::kHeaderSize) {
    return absl::DataLossError("batch has unknown attributes or header size");
  }
  BatchHeader h;
  h.total_length = DecodeFixed32(p + bf::kTotalLengthOffset);
  if (h.total_length != batch.size()) {
    return absl::DataLossError(absl::StrCat("batch length field says ", h.total_length,
                                            " bytes but ", batch.size(), " are stored"));
  }
  const uint32_t crc = Crc32c(batch.substr(bf::kCrcCoverageStart));
  if (crc != DecodeFixed32(p + bf::kCrcOffset)) {
    return absl::DataLossError("batch fails its CRC32C check");
  }
  h.record_count = static_cast<int32_t>(DecodeFixed32(p + bf::kRecordCountOffset));
  h.leader_epoch = static_cast<int32_t>(DecodeFixed32(p + bf::kLeaderEpochOffset));
  h.first_timestamp_ms = static_cast<int64_t>(DecodeFixed64(p + bf::kFirstTimestampOffset));
  h.max_timestamp_ms = static_cast<int64_t>(DecodeFixed64(p + bf::kMaxTimestampOffset));
  h.producer.producer_id = static_cast<int64_t>(DecodeFixed64(p + bf::kProducerIdOffset));
  h.producer.producer_epoch = static_cast<int16_t>(DecodeFixed16(p + bf::kProducerEpochOffset));
  h.producer.base_sequence = static_cast<int32_t>(DecodeFixed32(p + bf::kBaseSequenceOffset));
  if (h.record_count < 1) return absl::DataLossError("batch has no records");
  return h;
}

namespace {

// Walks the records of a verified batch, calling visit(index, timestamp, body-after-timestamp)
// for each; stops early when visit returns false. Checks the framing as it goes.
template <typename Visit>
absl::Status ForEachRecord(absl::string_view batch, Visit visit) {
  const char* p = batch.data();
  const int64_t count = DecodeFixed32(p + bf::kRecordCountOffset);
  const int64_t first_ts = static_cast<int64_t>(DecodeFixed64(p + bf::kFirstTimestampOffset));
  absl::string_view in = batch.substr(bf::kHeaderSize);
  for (int64_t i = 0; i < count; ++i) {
    absl::string_view rec;
    uint64_t delta = 0, ts_delta = 0;
    if (!GetLengthPrefixed(&in, &rec) || !GetVarint64(&rec, &delta) || delta != uint64_t(i) ||
        !GetVarint64(&rec, &ts_delta)) {
      return absl::DataLossError(absl::StrCat("batch record ", i, " is malformed"));
    }
    if (!visit(i, first_ts + ZigZagDecode(ts_delta), rec)) return absl::OkStatus();
  }
  if (!in.empty()) return absl::DataLossError("batch has bytes after its last record");
  return absl::OkStatus();
}

bool ParseRecordBody(absl::string_view rec, Record* r) {
  absl::string_view key, value;
  uint64_t header_count = 0;
  if (!GetLengthPrefixed(&rec, &key) || !GetLengthPrefixed(&rec, &value) ||
      !GetVarint64(&rec, &header_count) || header_count > rec.size()) {
    return false;
  }
  r->key.assign(key.data(), key.size());
  r->value.assign(value.data(), value.size());
  r->headers.resize(header_count);
  for (RecordHeader& h : r->headers) {
    absl::string_view hk, hv;
    if (!GetLengthPrefixed(&rec, &hk) || !GetLengthPrefixed(&rec, &hv)) return false;
    h.key.assign(hk.data(), hk.size());
    h.value.assign(hv.data(), hv.size());
  }
  return rec.empty();
}

}  // namespace

absl::Status DecodeRecords(absl::string_view batch, int64_t base_offset, int64_t min_offset,
                           int64_t max_records, std::vector<Record>* out) {
  int64_t taken = 0;
  bool malformed = false;
  absl::Status s = ForEachRecord(batch, [&](int64_t i, int64_t ts, absl::string_view rec) {
    const int64_t offset = base_offset + i;
    if (offset < min_offset) return true;
    if (taken >= max_records) return false;
    Record& r = out->emplace_back();
    r.offset = offset;
    r.timestamp_ms = ts;
    if (!ParseRecordBody(rec, &r)) {
      malformed = true;
      out->pop_back();
      return false;
    }
    ++taken;
    return true;
  });
  if (malformed) return absl::DataLossError("batch record body is malformed");
  return s;
}

absl::Status VisitRecords(absl::string_view batch, int64_t base_offset, int64_t min_offset,
                          int64_t end_offset, absl::FunctionRef<void(const RecordView&)> visit) {
  RecordView view;
  bool malformed = false;
  absl::Status s = ForEachRecord(batch, [&](int64_t i, int64_t ts, absl::string_view rec) {
    const int64_t offset = base_offset + i;
    if (offset < min_offset) return true;
    if (offset >= end_offset) return false;
    uint64_t header_count = 0;
    if (!GetLengthPrefixed(&rec, &view.key) || !GetLengthPrefixed(&rec, &view.value) ||
        !GetVarint64(&rec, &header_count) || header_count > rec.size()) {
      malformed = true;
      return false;
    }
    view.headers.resize(header_count);
    for (auto& [hk, hv] : view.headers) {
      if (!GetLengthPrefixed(&rec, &hk) || !GetLengthPrefixed(&rec, &hv)) {
        malformed = true;
        return false;
      }
    }
    if (!rec.empty()) {
      malformed = true;
      return false;
    }
    view.offset = offset;
    view.timestamp_ms = ts;
    visit(view);
    return true;
  });
  if (malformed) return absl::DataLossError("batch record body is malformed");
  return s;
}

absl::StatusOr<int64_t> FindTimestamp(absl::string_view batch, int64_t base_offset, int64_t ts) {
  int64_t found = -1;
  absl::Status s = ForEachRecord(batch, [&](int64_t i, int64_t record_ts, absl::string_view) {
    if (record_ts >= ts) {
      found = base_offset + i;
      return false;
    }
    return true;
  });
  if (!s.ok()) return s;
  return found;
}

}  // namespace evlog::storage
