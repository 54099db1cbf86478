#include "storage/batch_builder.h"

#include <algorithm>

#include "storage/batch_format.h"
#include "storage/coding.h"
#include "storage/crc32c.h"

namespace evlog::storage {

namespace bf = batch_format;

namespace {

// Writes a varint at `p` and returns the position after it.
inline char* WriteVarint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

inline void WriteFixed16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v);
  p[1] = static_cast<char>(v >> 8);
}

inline void WriteFixed64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}

size_t BodySize(uint64_t zigzag_delta, size_t record_index, absl::string_view key,
                absl::string_view value, absl::Span<const BatchBuilder::Header> headers) {
  size_t body = VarintLength(record_index) + VarintLength(zigzag_delta) + VarintLength(key.size()) +
                key.size() + VarintLength(value.size()) + value.size() +
                VarintLength(headers.size());
  for (const auto& [k, v] : headers) {
    body += VarintLength(k.size()) + k.size() + VarintLength(v.size()) + v.size();
  }
  return body;
}

}  // namespace

BatchBuilder::BatchBuilder(std::string* buffer, size_t reserve) : buffer_(buffer) {
  buffer_->clear();
  buffer_->reserve(std::max<size_t>(reserve, bf::kHeaderSize));
  buffer_->resize(bf::kHeaderSize);  // filled in by Finish
}

size_t BatchBuilder::EncodedRecordSize(int64_t timestamp_delta, size_t record_index,
                                       absl::string_view key, absl::string_view value,
                                       absl::Span<const Header> headers) {
  const size_t body = BodySize(ZigZagEncode(timestamp_delta), record_index, key, value, headers);
  return VarintLength(body) + body;
}

void BatchBuilder::Add(int64_t timestamp_ms, absl::string_view key, absl::string_view value,
                       absl::Span<const Header> headers) {
  if (record_count_ == 0) {
    first_timestamp_ms_ = timestamp_ms;
    max_timestamp_ms_ = timestamp_ms;
  } else {
    max_timestamp_ms_ = std::max(max_timestamp_ms_, timestamp_ms);
  }
  const uint64_t delta = ZigZagEncode(timestamp_ms - first_timestamp_ms_);
  const size_t index = static_cast<size_t>(record_count_);
  const size_t body = BodySize(delta, index, key, value, headers);
  // Framing in a small stack buffer and the bytes appended as they are: no temporary per
  // record, and no zero-filling of the buffer (which resize() would do) before the copy.
  char framing[4 * 10];
  char* p = WriteVarint(framing, body);
  p = WriteVarint(p, index);
  p = WriteVarint(p, delta);
  p = WriteVarint(p, key.size());
  buffer_->append(framing, p - framing);
  buffer_->append(key.data(), key.size());
  p = WriteVarint(framing, value.size());
  buffer_->append(framing, p - framing);
  buffer_->append(value.data(), value.size());
  p = WriteVarint(framing, headers.size());
  buffer_->append(framing, p - framing);
  for (const auto& [k, v] : headers) {
    p = WriteVarint(framing, k.size());
    buffer_->append(framing, p - framing);
    buffer_->append(k.data(), k.size());
    p = WriteVarint(framing, v.size());
    buffer_->append(framing, p - framing);
    buffer_->append(v.data(), v.size());
  }
  ++record_count_;
}

void BatchBuilder::Finish(const ProducerInfo& producer, int32_t leader_epoch) {
  char* h = buffer_->data();
  EncodeFixed32(h + bf::kMagicOffset, bf::kMagic);
  h[bf::kVersionOffset] = static_cast<char>(bf::kVersion);
  h[bf::kAttributesOffset] = 0;
  WriteFixed16(h + bf::kHeaderSizeOffset, bf::kHeaderSize);
  EncodeFixed32(h + bf::kTotalLengthOffset, static_cast<uint32_t>(buffer_->size()));
  EncodeFixed32(h + bf::kRecordCountOffset, static_cast<uint32_t>(record_count_));
  EncodeFixed32(h + bf::kLeaderEpochOffset, static_cast<uint32_t>(leader_epoch));
  WriteFixed64(h + bf::kFirstTimestampOffset, static_cast<uint64_t>(first_timestamp_ms_));
  WriteFixed64(h + bf::kMaxTimestampOffset, static_cast<uint64_t>(max_timestamp_ms_));
  WriteFixed64(h + bf::kProducerIdOffset, static_cast<uint64_t>(producer.producer_id));
  WriteFixed16(h + bf::kProducerEpochOffset, static_cast<uint16_t>(producer.producer_epoch));
  WriteFixed16(h + bf::kReservedOffset, 0);
  EncodeFixed32(h + bf::kBaseSequenceOffset, static_cast<uint32_t>(producer.base_sequence));
  const uint32_t crc = Crc32c(absl::string_view(*buffer_).substr(bf::kCrcCoverageStart));
  EncodeFixed32(h + bf::kCrcOffset, crc);
}

}  // namespace evlog::storage
