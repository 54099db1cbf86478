// Tests of SegmentFile: frames round-trip, and every kind of mismatch is DATA_LOSS.
#include "storage/segment_file.h"

#include <filesystem>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/segment_file_format.h"

namespace evlog::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class SegmentFileTest : public ::testing::Test {
 protected:
  SegmentFileTest()
      : dir_(fs::temp_directory_path() /
             absl::StrCat("evlog_segment_file_test_", getpid(), "_", std::random_device()())) {
    fs::create_directories(dir_);
  }
  ~SegmentFileTest() override { fs::remove_all(dir_); }

  std::string Path() const { return (dir_ / "seg.evseg").string(); }
  rocksdb::FileSystem* Fs() const { return rocksdb::FileSystem::Default().get(); }

  fs::path dir_;
};

TEST_F(SegmentFileTest, FramesRoundTripAcrossReopen) {
  const std::string small(100, 's');
  const std::string large(200 << 10, 'L');  // written straight from the caller's buffer
  BatchLocation a, b, c;
  {
    auto file = SegmentFile::Create(Fs(), dir_.string(), Path(), 3, 9);
    ASSERT_TRUE(file.ok()) << file.status();
    EXPECT_EQ((*file)->size(), segment_format::kFileHeaderSize);
    a = *(*file)->Append(0, 10, small);
    b = *(*file)->Append(1, 0, large);
    c = *(*file)->Append(0, 11, small);
    EXPECT_TRUE((*file)->unsynced());
    ASSERT_TRUE((*file)->Sync().ok());
    EXPECT_FALSE((*file)->unsynced());
    EXPECT_EQ((*file)->synced_size(), fs::file_size(Path()));
    std::string scratch;
    EXPECT_EQ(*(*file)->ReadBatch(b, 1, 0, &scratch), large);
  }
  EXPECT_EQ(a.position, segment_format::kFileHeaderSize);
  EXPECT_EQ(b.position, a.position + segment_format::kFrameHeaderSize + small.size());
  auto file = SegmentFile::Open(Fs(), Path(), 3, 9);
  ASSERT_TRUE(file.ok()) << file.status();
  std::string scratch;
  EXPECT_EQ(*(*file)->ReadBatch(a, 0, 10, &scratch), small);
  EXPECT_EQ(*(*file)->ReadBatch(c, 0, 11, &scratch), small);
  // Appends after a reopen go to the end.
  BatchLocation d = *(*file)->Append(2, 5, "more");
  EXPECT_EQ(d.position, c.position + segment_format::kFrameHeaderSize + small.size());
  ASSERT_TRUE((*file)->Sync().ok());
  EXPECT_EQ(*(*file)->ReadBatch(d, 2, 5, &scratch), "more");
}

TEST_F(SegmentFileTest, MismatchesAreDataLoss) {
  auto file = SegmentFile::Create(Fs(), dir_.string(), Path(), 3, 9);
  ASSERT_TRUE(file.ok());
  BatchLocation a = *(*file)->Append(0, 10, "batch-a");
  ASSERT_TRUE((*file)->Sync().ok());
  std::string scratch;
  // Another partition's or offset's location, a wrong length, a position inside a frame, or
  // past the end.
  EXPECT_THAT((*file)->ReadBatch(a, 1, 10, &scratch).status().message(),
              HasSubstr("belongs to another batch"));
  EXPECT_EQ((*file)->ReadBatch(a, 0, 11, &scratch).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ((*file)->ReadBatch({a.position, 3}, 0, 10, &scratch).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_THAT(
      (*file)->ReadBatch({a.position + 1, a.batch_length - 1}, 0, 10, &scratch).status().message(),
      HasSubstr("no intact frame"));
  EXPECT_THAT(
      (*file)->ReadBatch({a.position + 20, a.batch_length}, 0, 10, &scratch).status().message(),
      HasSubstr("short"));
  // A file opened as another segment's.
  EXPECT_EQ(SegmentFile::Open(Fs(), Path(), 3, 8).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(SegmentFile::Open(Fs(), (dir_ / "none").string(), 3, 9).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SegmentFileTest, LocationMatchesTheWorkedExample) {
  const std::string v = EncodeBatchLocation({32, 64});
  EXPECT_EQ(v, std::string("\x20\0\0\0\0\0\0\0\x40\0\0\0", 12));
  std::optional<BatchLocation> back = DecodeBatchLocation(v);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->position, 32u);
  EXPECT_EQ(back->batch_length, 64u);
  EXPECT_FALSE(DecodeBatchLocation("short").has_value());

  // The frame of the worked example: partition 3, base offset 10, a 64-byte batch at 32.
  auto file = SegmentFile::Create(Fs(), dir_.string(), Path(), 1, 1);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append(3, 10, std::string(64, 'b')).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  std::string bytes(fs::file_size(Path()), '\0');
  FILE* f = fopen(Path().c_str(), "rb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(fread(bytes.data(), 1, bytes.size(), f), bytes.size());
  fclose(f);
  EXPECT_EQ(bytes.substr(0, 8), "EVLOGSEG");
  EXPECT_EQ(bytes.substr(32, 20), std::string("EVSF\x03\0\0\0\x0a\0\0\0\0\0\0\0\x40\0\0\0", 20));
  EXPECT_EQ(bytes.size(), 32u + 24u + 64u);
}

}  // namespace
}  // namespace evlog::storage
