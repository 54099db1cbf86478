#include "server/raw_read.h"

#include "storage/batch_codec.h"
#include "storage/batch_format.h"
#include "storage/coding.h"

namespace evlog::server {

int64_t StoredBatchRecordCount(absl::string_view batch) {
  return storage::DecodeFixed32(batch.data() + storage::batch_format::kRecordCountOffset);
}

absl::StatusOr<int64_t> RecordBytesInRange(absl::string_view batch, int64_t base_offset,
                                           int64_t from, int64_t to) {
  int64_t bytes = 0;
  absl::Status s =
      storage::VisitRecords(batch, base_offset, from, to, [&](const storage::RecordView& r) {
        bytes += static_cast<int64_t>(r.key.size() + r.value.size());
        for (const auto& [key, value] : r.headers) {
          bytes += static_cast<int64_t>(key.size() + value.size());
        }
      });
  if (!s.ok()) return s;
  return bytes;
}

}  // namespace evlog::server
