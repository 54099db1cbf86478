// SegmentFile: one segment's data file (segment_file_format.h). The writer thread appends
// batches to it as frames and fsyncs it; readers on any thread read a batch back from its
// location. All I/O goes through a rocksdb::FileSystem, so that the tests' power-cut file
// system (testing/fault_injection_fs.h) covers these files exactly as it covers RocksDB's own.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "rocksdb/file_system.h"

namespace evlog::storage {

// Where a batch's frame is in its segment's data file: the value of the batch's key.
struct BatchLocation {
  uint64_t position = 0;      // of the frame
  uint32_t batch_length = 0;  // bytes of the batch (the frame is 24 bytes longer)
};

// The 12-byte encoding of segment_file_format.h, and back (nullopt if `value` is not 12 bytes).
std::string EncodeBatchLocation(const BatchLocation& location);
std::optional<BatchLocation> DecodeBatchLocation(absl::string_view value);

class SegmentFile {
 public:
  // Creates the data file `path` of segment `seq` of topic `topic_id` with its header, fsyncs
  // it and then its directory `dir` (so that the file's name survives a power cut before the
  // segment takes data), and keeps it open for appends. `fs` must outlive the file.
  // Errors: UNAVAILABLE / INTERNAL for I/O errors (the file may then exist, half made; the
  // caller deletes it).
  static absl::StatusOr<std::unique_ptr<SegmentFile>> Create(rocksdb::FileSystem* fs,
                                                             const std::string& dir,
                                                             const std::string& path,
                                                             uint32_t topic_id, uint64_t seq);

  // Opens an existing data file for reading and checks its header; appends reopen it when
  // the first one comes. Errors: NOT_FOUND if the file does not exist; DATA_LOSS if its header
  // is damaged or names another segment; UNAVAILABLE / INTERNAL for I/O errors.
  static absl::StatusOr<std::unique_ptr<SegmentFile>> Open(rocksdb::FileSystem* fs,
                                                           const std::string& path,
                                                           uint32_t topic_id, uint64_t seq);

  ~SegmentFile();
  SegmentFile(const SegmentFile&) = delete;
  SegmentFile& operator=(const SegmentFile&) = delete;

  // --- Writer thread only. ---

  // Adds a frame holding `batch` for `partition` at `base_offset` and returns its location.
  // Small frames are gathered in memory and written by Flush or Sync; a large batch is
  // written at once (copying it would cost more than the extra system call), so `batch` need
  // not outlive the call. Nothing is durable before Sync. Errors: UNAVAILABLE / INTERNAL for
  // I/O errors; after an error the file's tail is unknown and the caller must stop writing.
  absl::StatusOr<BatchLocation> Append(uint32_t partition, int64_t base_offset,
                                       absl::string_view batch);

  // Writes what Append gathered (readers may then read it; nothing is durable yet).
  absl::Status Flush();

  // Flush, then fdatasync: every frame appended so far is durable when it returns OK.
  absl::Status Sync();

  // True if frames were appended since the last successful Sync.
  bool unsynced() const { return synced_size_ < size_; }

  // The file's length once everything appended so far is written; below synced_size()
  // everything is durable.
  uint64_t size() const { return size_; }
  uint64_t synced_size() const { return synced_size_; }

  // Closes the file for appends (a sealed segment) after a Sync; reads go on. A later Append
  // reopens it.
  absl::Status CloseForAppends();

  // Fsyncs the whole file, including bytes an earlier process wrote without syncing (after a
  // crash the page cache may still hold them), and closes it for appends. Used at open.
  absl::Status SyncAllWritten();

  // --- Any thread. ---

  // Reads the batch at `location`, which the index holds for `partition` and `base_offset`,
  // into `scratch` and returns it, after checking its frame (magic, header CRC, partition,
  // base offset, length). The batch's own CRC is the caller's to check (VerifyBatch).
  // Errors: DATA_LOSS naming the file and position if the frame is missing (the file is
  // shorter), damaged or another batch's; UNAVAILABLE / INTERNAL for I/O errors.
  absl::StatusOr<absl::string_view> ReadBatch(const BatchLocation& location, uint32_t partition,
                                              int64_t base_offset, std::string* scratch) const;

  const std::string& path() const { return path_; }

 private:
  SegmentFile(rocksdb::FileSystem* fs, std::string path, uint64_t size,
              std::unique_ptr<rocksdb::FSRandomAccessFile> reader);
  absl::Status OpenForAppends();
  absl::Status Write(absl::string_view data);

  rocksdb::FileSystem* const fs_;
  const std::string path_;
  const std::unique_ptr<rocksdb::FSRandomAccessFile> reader_;
  // Writer thread only.
  std::unique_ptr<rocksdb::FSWritableFile> writer_;
  std::string buffer_;        // frames appended but not yet written
  uint64_t size_ = 0;         // file length including buffer_
  uint64_t synced_size_ = 0;  // durable prefix (as far as this process knows)
};

// The data file of segment `seq` of topic `topic_id` in data directory `dir`, and the
// directory holding such files.
std::string SegmentFilePath(const std::string& dir, uint32_t topic_id, uint64_t seq);
std::string SegmentFileDirectory(const std::string& dir);

}  // namespace evlog::storage
