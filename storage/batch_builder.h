// BatchBuilder: writes one batch in the format of batch_format.h record by record, straight
// into a caller's buffer, then patches the header and the CRC in place.
//
// It is the one encoder of the format: storage's EncodeBatch uses it for the records path, and
// the client library uses it to build each partition's open batch as records are sent, so that
// the server can validate the bytes and store them unchanged (ProduceRequest.batch), without
// per-record objects on either side.
//
// Example:
//   std::string bytes;
//   BatchBuilder b(&bytes);
//   b.Add(/*timestamp_ms=*/1000, "k", "v");
//   b.Finish(ProducerInfo{}, /*leader_epoch=*/0);   // bytes now hold a valid batch
//
// Thread safety: none; one thread uses a builder (and its buffer) at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "storage/record.h"

namespace evlog::storage {

class BatchBuilder {
 public:
  using Header = std::pair<absl::string_view, absl::string_view>;

  // Starts an empty batch in `*buffer`: clears it, reserves `reserve` bytes and writes a
  // placeholder header. REQUIRES: `buffer` outlives the builder and nobody else changes it
  // while the builder is used.
  explicit BatchBuilder(std::string* buffer, size_t reserve = 0);

  // The bytes `Add` would append for this record (its length prefix included), so a caller
  // can decide whether it still fits before adding it.
  static size_t EncodedRecordSize(int64_t timestamp_delta, size_t record_index,
                                  absl::string_view key, absl::string_view value,
                                  absl::Span<const Header> headers = {});

  // Appends one record. REQUIRES: timestamp_ms >= 0.
  void Add(int64_t timestamp_ms, absl::string_view key, absl::string_view value,
           absl::Span<const Header> headers = {});

  // Writes the header (record count, length, timestamps, `producer`, `leader_epoch`) and the
  // CRC, after which the buffer holds a valid batch. May be called again (e.g. to restamp the
  // producer fields of a batch being resent under a new producer id); Add after Finish is
  // allowed and needs another Finish. REQUIRES: record_count() >= 1.
  void Finish(const ProducerInfo& producer, int32_t leader_epoch);

  int32_t record_count() const { return record_count_; }
  // Bytes in the buffer, header included.
  size_t size() const { return buffer_->size(); }
  int64_t first_timestamp_ms() const { return first_timestamp_ms_; }

 private:
  std::string* const buffer_;
  int32_t record_count_ = 0;
  int64_t first_timestamp_ms_ = 0;
  int64_t max_timestamp_ms_ = 0;
};

}  // namespace evlog::storage
