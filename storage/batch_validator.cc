#include "storage/batch_validator.h"

#include <algorithm>
#include <climits>

#include "absl/strings/str_cat.h"
#include "storage/coding.h"
#include "storage/crc32c.h"

namespace evlog::storage {

namespace bf = batch_format;

namespace {

// Reads a varint in [p, end); returns the position after it, or nullptr if the input ends
// early or the varint is longer than 10 bytes. One-byte varints (most lengths and deltas)
// take the first branch.
inline const char* ReadVarint(const char* p, const char* end, uint64_t* v) {
  if (p < end && static_cast<uint8_t>(*p) < 0x80) {
    *v = static_cast<uint8_t>(*p);
    return p + 1;
  }
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && p < end; shift += 7) {
    const uint8_t byte = static_cast<uint8_t>(*p++);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *v = result;
      return p;
    }
  }
  return nullptr;
}

// Skips a varint length and that many bytes, adding the length to `*size`.
inline const char* SkipBytes(const char* p, const char* end, int64_t* size) {
  uint64_t len = 0;
  p = ReadVarint(p, end, &len);
  if (p == nullptr || len > static_cast<uint64_t>(end - p)) return nullptr;
  *size += static_cast<int64_t>(len);
  return p + len;
}

absl::Status Refuse(BatchDefect kind, BatchDefect* defect, absl::string_view message) {
  if (defect != nullptr) *defect = kind;
  return absl::InvalidArgumentError(message);
}

}  // namespace

absl::StatusOr<ValidatedBatch> ValidateBatch(std::string bytes, const BatchLimits& limits,
                                             BatchDefect* defect) {
  if (defect != nullptr) *defect = BatchDefect::kNone;
  const auto malformed = [defect](absl::string_view message) {
    return Refuse(BatchDefect::kMalformed, defect, message);
  };
  const int64_t size = static_cast<int64_t>(bytes.size());
  if (size > limits.max_batch_bytes) {
    return Refuse(BatchDefect::kTooLarge, defect,
                  absl::StrCat("batch is ", size, " bytes; at most ", limits.max_batch_bytes,
                               " bytes are allowed: split it"));
  }
  if (size < bf::kHeaderSize) {
    return malformed(absl::StrCat("batch of ", size, " bytes is shorter than its ", bf::kHeaderSize,
                                  "-byte header"));
  }
  const char* h = bytes.data();
  if (DecodeFixed32(h + bf::kMagicOffset) != bf::kMagic) {
    return malformed("batch has a bad magic number (not the format of storage/batch_format.h)");
  }
  if (static_cast<uint8_t>(h[bf::kVersionOffset]) != bf::kVersion) {
    return malformed(absl::StrCat("batch has format version ",
                                  static_cast<uint8_t>(h[bf::kVersionOffset]),
                                  "; this server understands version ", bf::kVersion));
  }
  if (h[bf::kAttributesOffset] != 0 ||
      DecodeFixed16(h + bf::kHeaderSizeOffset) != bf::kHeaderSize) {
    return malformed(
        absl::StrCat("batch has attributes or a header size other than 0 and ", bf::kHeaderSize));
  }
  ValidatedBatch v;
  BatchHeader& hdr = v.header_;
  hdr.total_length = DecodeFixed32(h + bf::kTotalLengthOffset);
  if (hdr.total_length != bytes.size()) {
    return malformed(absl::StrCat("batch's total_length field says ", hdr.total_length,
                                  " bytes but it is ", size, " bytes"));
  }
  if (Crc32c(absl::string_view(bytes).substr(bf::kCrcCoverageStart)) !=
      DecodeFixed32(h + bf::kCrcOffset)) {
    return Refuse(BatchDefect::kChecksum, defect,
                  "batch fails its CRC32C check: its bytes changed after it was sealed "
                  "(a client bug or corruption in transit); nothing was stored");
  }
  const uint32_t count = DecodeFixed32(h + bf::kRecordCountOffset);
  if (count < 1) return malformed("batch has no records; a batch needs at least 1");
  if (static_cast<int64_t>(count) > limits.max_records) {
    return Refuse(BatchDefect::kTooLarge, defect,
                  absl::StrCat("batch has ", count, " records; at most ", limits.max_records,
                               " are allowed: split it"));
  }
  hdr.record_count = static_cast<int32_t>(count);
  hdr.leader_epoch = static_cast<int32_t>(DecodeFixed32(h + bf::kLeaderEpochOffset));
  hdr.first_timestamp_ms = static_cast<int64_t>(DecodeFixed64(h + bf::kFirstTimestampOffset));
  hdr.max_timestamp_ms = static_cast<int64_t>(DecodeFixed64(h + bf::kMaxTimestampOffset));
  ProducerInfo& producer = hdr.producer;
  producer.producer_id = static_cast<int64_t>(DecodeFixed64(h + bf::kProducerIdOffset));
  producer.producer_epoch = static_cast<int16_t>(DecodeFixed16(h + bf::kProducerEpochOffset));
  producer.base_sequence = static_cast<int32_t>(DecodeFixed32(h + bf::kBaseSequenceOffset));
  if (producer.producer_id < 0) {
    if (producer.producer_id != -1 || producer.producer_epoch != -1 ||
        producer.base_sequence != -1) {
      return malformed(
          "batch's producer fields must be all -1 (not idempotent) or a producer id, epoch and "
          "base sequence >= 0");
    }
  } else if (producer.producer_epoch < 0 || producer.base_sequence < 0 ||
             static_cast<int64_t>(producer.base_sequence) + count - 1 > INT32_MAX) {
    return malformed(absl::StrCat(
        "idempotent batch needs producer_epoch >= 0 and a base_sequence >= 0 whose records' "
        "sequence numbers stay <= 2147483647 (epoch ",
        producer.producer_epoch, ", base_sequence ", producer.base_sequence, ")"));
  }
  if (hdr.first_timestamp_ms < 0) {
    return malformed(absl::StrCat("batch's first_timestamp_ms is ", hdr.first_timestamp_ms,
                                  "; timestamps are milliseconds since the Unix epoch, >= 0"));
  }

  const char* p = h + bf::kHeaderSize;
  const char* const end = h + size;
  int64_t max_ts = hdr.first_timestamp_ms;
  int64_t total_record_bytes = 0;
  for (uint32_t i = 0; i < count; ++i) {
    uint64_t length = 0;
    p = ReadVarint(p, end, &length);
    if (p == nullptr || length > static_cast<uint64_t>(end - p)) {
      return malformed(absl::StrCat("batch record ", i, " has a length beyond the batch's end"));
    }
    const char* const rec_end = p + length;
    uint64_t offset_delta = 0, ts_delta = 0, header_count = 0;
    p = ReadVarint(p, rec_end, &offset_delta);
    if (p == nullptr || offset_delta != i) {
      return malformed(absl::StrCat("batch record ", i, " has a bad offset delta (must be ", i,
                                    ": records are numbered densely from 0)"));
    }
    p = ReadVarint(p, rec_end, &ts_delta);
    if (p == nullptr) return malformed(absl::StrCat("batch record ", i, " is truncated"));
    // Wrapping arithmetic: a hostile delta must not be undefined behaviour.
    const int64_t ts = static_cast<int64_t>(static_cast<uint64_t>(hdr.first_timestamp_ms) +
                                            static_cast<uint64_t>(ZigZagDecode(ts_delta)));
    if ((i == 0 && ts_delta != 0) || ts < 0) {
      return malformed(absl::StrCat("batch record ", i, " has timestamp ", ts,
                                    i == 0 ? " (the first record's timestamp must equal the "
                                             "header's first_timestamp_ms)"
                                           : " (timestamps must be >= 0)"));
    }
    max_ts = std::max(max_ts, ts);
    int64_t record_bytes = 0;
    p = SkipBytes(p, rec_end, &record_bytes);                    // key
    if (p != nullptr) p = SkipBytes(p, rec_end, &record_bytes);  // value
    if (p != nullptr) p = ReadVarint(p, rec_end, &header_count);
    if (p == nullptr || header_count > static_cast<uint64_t>(rec_end - p)) {
      return malformed(absl::StrCat("batch record ", i,
                                    " has a malformed key, value or "
                                    "header count"));
    }
    for (uint64_t k = 0; k < header_count && p != nullptr; ++k) {
      p = SkipBytes(p, rec_end, &record_bytes);
      if (p != nullptr) p = SkipBytes(p, rec_end, &record_bytes);
    }
    if (p != rec_end) {
      return malformed(absl::StrCat("batch record ", i,
                                    " has malformed headers or bytes "
                                    "after its last field"));
    }
    if (record_bytes > limits.max_record_bytes) {
      return Refuse(BatchDefect::kRecordTooLarge, defect,
                    absl::StrCat("batch record ", i, " is ", record_bytes,
                                 " bytes (key + value + headers); at most ",
                                 limits.max_record_bytes, " bytes are allowed per record"));
    }
    total_record_bytes += record_bytes;
  }
  if (p != end) {
    return malformed(absl::StrCat("batch has ", end - p, " bytes after its last record (",
                                  "record_count says ", count, ")"));
  }
  if (max_ts != hdr.max_timestamp_ms) {
    return malformed(absl::StrCat("batch's max_timestamp_ms is ", hdr.max_timestamp_ms,
                                  " but its largest record timestamp is ", max_ts));
  }
  v.record_bytes_ = total_record_bytes;
  v.bytes_ = std::move(bytes);
  return v;
}

}  // namespace evlog::storage
