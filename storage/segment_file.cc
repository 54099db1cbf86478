// SegmentFile: see segment_file.h; the byte layout is in segment_file_format.h.
#include "storage/segment_file.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "storage/coding.h"
#include "storage/crc32c.h"
#include "storage/meta_format.h"
#include "storage/rocks_status.h"
#include "storage/segment_file_format.h"

namespace evlog::storage {

namespace sf = segment_format;

namespace {

// A batch at least this big is written straight from the caller's buffer instead of being
// copied into the frame buffer: above it the copy costs more than a second write call.
constexpr size_t kDirectWriteBytes = 64 << 10;

std::string FileHeader(uint32_t topic_id, uint64_t seq) {
  std::string h(sf::kFileMagic, sizeof(sf::kFileMagic));
  PutFixed32(&h, sf::kVersion);
  PutFixed32(&h, topic_id);
  PutFixed64(&h, seq);
  PutFixed32(&h, 0);
  PutFixed32(&h, Crc32c(h));
  return h;
}

void PutFrameHeader(std::string* dst, uint32_t partition, int64_t base_offset, size_t length) {
  const size_t start = dst->size();
  PutFixed32(dst, sf::kFrameMagic);
  PutFixed32(dst, partition);
  PutFixed64(dst, static_cast<uint64_t>(base_offset));
  PutFixed32(dst, static_cast<uint32_t>(length));
  PutFixed32(dst, Crc32c(absl::string_view(dst->data() + start, sf::kFrameCrcOffset)));
}

}  // namespace

std::string EncodeBatchLocation(const BatchLocation& location) {
  std::string v;
  PutFixed64(&v, location.position);
  PutFixed32(&v, location.batch_length);
  return v;
}

std::optional<BatchLocation> DecodeBatchLocation(absl::string_view value) {
  if (value.size() != sf::kLocationSize) return std::nullopt;
  return BatchLocation{DecodeFixed64(value.data()), DecodeFixed32(value.data() + 8)};
}

std::string SegmentFileDirectory(const std::string& dir) {
  return absl::StrCat(dir, "/", sf::kDirectory);
}

std::string SegmentFilePath(const std::string& dir, uint32_t topic_id, uint64_t seq) {
  return absl::StrCat(SegmentFileDirectory(dir), "/", meta::SegmentName(topic_id, seq),
                      sf::kFileSuffix);
}

SegmentFile::SegmentFile(rocksdb::FileSystem* fs, std::string path, uint64_t size,
                         std::unique_ptr<rocksdb::FSRandomAccessFile> reader)
    : fs_(fs),
      path_(std::move(path)),
      reader_(std::move(reader)),
      size_(size),
      synced_size_(size) {}

SegmentFile::~SegmentFile() {
  if (writer_ != nullptr) writer_->Close(rocksdb::IOOptions(), nullptr).PermitUncheckedError();
}

absl::StatusOr<std::unique_ptr<SegmentFile>> SegmentFile::Create(rocksdb::FileSystem* fs,
                                                                 const std::string& dir,
                                                                 const std::string& path,
                                                                 uint32_t topic_id, uint64_t seq) {
  const rocksdb::IOOptions io;
  std::unique_ptr<rocksdb::FSWritableFile> writer;
  rocksdb::IOStatus s = fs->NewWritableFile(path, rocksdb::FileOptions(), &writer, nullptr);
  const std::string header = FileHeader(topic_id, seq);
  if (s.ok()) s = writer->Append(header, io, nullptr);
  if (s.ok()) s = writer->Sync(io, nullptr);
  std::unique_ptr<rocksdb::FSDirectory> directory;
  if (s.ok()) s = fs->NewDirectory(dir, io, &directory, nullptr);
  if (s.ok()) s = directory->Fsync(io, nullptr);
  std::unique_ptr<rocksdb::FSRandomAccessFile> reader;
  if (s.ok()) s = fs->NewRandomAccessFile(path, rocksdb::FileOptions(), &reader, nullptr);
  if (!s.ok()) return FromRocks(s, absl::StrCat("creating segment file ", path));
  auto file =
      std::unique_ptr<SegmentFile>(new SegmentFile(fs, path, header.size(), std::move(reader)));
  file->writer_ = std::move(writer);
  return file;
}

absl::StatusOr<std::unique_ptr<SegmentFile>> SegmentFile::Open(rocksdb::FileSystem* fs,
                                                               const std::string& path,
                                                               uint32_t topic_id, uint64_t seq) {
  const rocksdb::IOOptions io;
  uint64_t size = 0;
  rocksdb::IOStatus s = fs->GetFileSize(path, io, &size, nullptr);
  if (s.IsNotFound() || s.IsPathNotFound()) {
    return absl::NotFoundError(absl::StrCat("segment file ", path, " is missing"));
  }
  std::unique_ptr<rocksdb::FSRandomAccessFile> reader;
  if (s.ok()) s = fs->NewRandomAccessFile(path, rocksdb::FileOptions(), &reader, nullptr);
  if (!s.ok()) return FromRocks(s, absl::StrCat("opening segment file ", path));
  const std::string want = FileHeader(topic_id, seq);
  char scratch[sf::kFileHeaderSize];
  rocksdb::Slice got;
  s = reader->Read(0, want.size(), io, &got, scratch, nullptr);
  if (!s.ok()) return FromRocks(s, absl::StrCat("reading segment file ", path));
  if (got.ToStringView() != want) {
    return absl::DataLossError(absl::StrCat("segment file ", path,
                                            " has a damaged header or belongs to another "
                                            "segment (",
                                            got.size(), " header bytes read)"));
  }
  return std::unique_ptr<SegmentFile>(new SegmentFile(fs, path, size, std::move(reader)));
}

absl::Status SegmentFile::OpenForAppends() {
  rocksdb::IOStatus s = fs_->ReopenWritableFile(path_, rocksdb::FileOptions(), &writer_, nullptr);
  if (!s.ok()) {
    writer_.reset();
    return FromRocks(s, absl::StrCat("opening segment file ", path_, " for appends"));
  }
  return absl::OkStatus();
}

absl::Status SegmentFile::Write(absl::string_view data) {
  if (writer_ == nullptr) {
    if (absl::Status s = OpenForAppends(); !s.ok()) return s;
  }
  rocksdb::IOStatus s =
      writer_->Append(rocksdb::Slice(data.data(), data.size()), rocksdb::IOOptions(), nullptr);
  if (!s.ok()) return FromRocks(s, absl::StrCat("writing segment file ", path_));
  return absl::OkStatus();
}

absl::StatusOr<BatchLocation> SegmentFile::Append(uint32_t partition, int64_t base_offset,
                                                  absl::string_view batch) {
  const BatchLocation location{size_, static_cast<uint32_t>(batch.size())};
  PutFrameHeader(&buffer_, partition, base_offset, batch.size());
  if (batch.size() >= kDirectWriteBytes) {
    if (absl::Status s = Flush(); !s.ok()) return s;
    if (absl::Status s = Write(batch); !s.ok()) return s;
  } else {
    buffer_.append(batch.data(), batch.size());
  }
  size_ += sf::kFrameHeaderSize + batch.size();
  return location;
}

absl::Status SegmentFile::Flush() {
  if (buffer_.empty()) return absl::OkStatus();
  absl::Status s = Write(buffer_);
  buffer_.clear();
  return s;
}

absl::Status SegmentFile::Sync() {
  if (!unsynced()) return absl::OkStatus();
  if (absl::Status s = Flush(); !s.ok()) return s;
  rocksdb::IOStatus s = writer_->Sync(rocksdb::IOOptions(), nullptr);
  if (!s.ok()) return FromRocks(s, absl::StrCat("syncing segment file ", path_));
  synced_size_ = size_;
  return absl::OkStatus();
}

absl::Status SegmentFile::CloseForAppends() {
  if (absl::Status s = Sync(); !s.ok()) return s;
  if (writer_ == nullptr) return absl::OkStatus();
  rocksdb::IOStatus s = writer_->Close(rocksdb::IOOptions(), nullptr);
  writer_.reset();
  if (!s.ok()) return FromRocks(s, absl::StrCat("closing segment file ", path_));
  return absl::OkStatus();
}

absl::Status SegmentFile::SyncAllWritten() {
  if (writer_ == nullptr) {
    if (absl::Status s = OpenForAppends(); !s.ok()) return s;
  }
  if (absl::Status s = Flush(); !s.ok()) return s;
  rocksdb::IOStatus s = writer_->Sync(rocksdb::IOOptions(), nullptr);
  if (!s.ok()) return FromRocks(s, absl::StrCat("syncing segment file ", path_));
  synced_size_ = size_;
  return CloseForAppends();
}

absl::StatusOr<absl::string_view> SegmentFile::ReadBatch(const BatchLocation& location,
                                                         uint32_t partition, int64_t base_offset,
                                                         std::string* scratch) const {
  const size_t n = sf::kFrameHeaderSize + static_cast<size_t>(location.batch_length);
  if (scratch->size() < n) scratch->resize(n);
  rocksdb::Slice got;
  rocksdb::IOStatus s =
      reader_->Read(location.position, n, rocksdb::IOOptions(), &got, scratch->data(), nullptr);
  if (!s.ok()) {
    return FromRocks(s, absl::StrCat("reading segment file ", path_, " at ", location.position));
  }
  auto damaged = [&](absl::string_view what) {
    return absl::DataLossError(absl::StrCat("segment file ", path_, " at position ",
                                            location.position, " (partition ", partition,
                                            ", offset ", base_offset, "): ", what));
  };
  if (got.size() < n) {
    return damaged(absl::StrCat("the file ends ", n - got.size(), " bytes short of the batch"));
  }
  const char* f = got.data();
  if (DecodeFixed32(f) != sf::kFrameMagic ||
      DecodeFixed32(f + sf::kFrameCrcOffset) != Crc32c(absl::string_view(f, sf::kFrameCrcOffset))) {
    return damaged("no intact frame there");
  }
  if (DecodeFixed32(f + sf::kFramePartitionOffset) != partition ||
      static_cast<int64_t>(DecodeFixed64(f + sf::kFrameBaseOffsetOffset)) != base_offset ||
      DecodeFixed32(f + sf::kFrameLengthOffset) != location.batch_length) {
    return damaged("the frame there belongs to another batch");
  }
  return absl::string_view(f + sf::kFrameHeaderSize, location.batch_length);
}

}  // namespace evlog::storage
