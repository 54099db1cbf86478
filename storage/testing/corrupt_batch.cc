// Test helper: see corrupt_batch.h.
#include "storage/testing/corrupt_batch.h"

#include <fstream>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "storage/meta_format.h"
#include "storage/segment_file.h"
#include "storage/segment_file_format.h"

namespace evlog::storage::testing {

absl::Status CorruptStoredBatch(const std::string& data_dir, uint32_t topic_id, uint32_t partition,
                                int64_t base_offset) {
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies({}, data_dir, &names);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (const auto& n : names) cfs.emplace_back(n, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly({}, data_dir, cfs, &handles, &raw);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  absl::Status result = absl::NotFoundError(
      absl::StrCat("no stored batch at offset ", base_offset, " of partition ", partition));
  for (size_t i = 0; i < names.size(); ++i) {
    uint32_t id = 0;
    uint64_t seq = 0;
    if (!meta::ParseSegmentName(names[i], &id, &seq) || id != topic_id) continue;
    std::string value;
    if (!db->Get({}, handles[i], meta::BatchKey(partition, base_offset), &value).ok()) continue;
    std::optional<BatchLocation> location = DecodeBatchLocation(value);
    if (!location.has_value() || location->batch_length < 2) {
      result = absl::DataLossError("damaged location");
      break;
    }
    const std::string path = SegmentFilePath(data_dir, topic_id, seq);
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const auto at = static_cast<std::streamoff>(
        location->position + segment_format::kFrameHeaderSize + location->batch_length - 2);
    char c = 0;
    f.seekg(at);
    f.get(c);
    f.seekp(at);
    f.put(static_cast<char>(c ^ 0x20));
    f.close();
    result =
        f.fail() ? absl::InternalError(absl::StrCat("cannot rewrite ", path)) : absl::OkStatus();
  }
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  return result;
}

}  // namespace evlog::storage::testing
