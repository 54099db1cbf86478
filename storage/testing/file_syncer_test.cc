// Tests of FileSyncer: every file of a job is durable when Wait returns OK, a job with more
// files than threads completes, and a failed fsync is reported without stalling later jobs.
#include "storage/file_syncer.h"

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "storage/segment_file.h"
#include "storage/testing/fault_injection_fs.h"

namespace evlog::storage {
namespace {

namespace fs = std::filesystem;

class FileSyncerTest : public ::testing::Test {
 protected:
  FileSyncerTest()
      : dir_(fs::temp_directory_path() /
             absl::StrCat("evlog_file_syncer_test_", getpid(), "_", std::random_device()())),
        fs_(std::make_shared<FaultInjectionFileSystem>()) {
    fs::create_directories(dir_);
  }
  ~FileSyncerTest() override { fs::remove_all(dir_); }

  // `n` data files, each with one unsynced frame.
  std::vector<std::unique_ptr<SegmentFile>> FilesWithUnsyncedFrames(int n) {
    std::vector<std::unique_ptr<SegmentFile>> files;
    for (int i = 0; i < n; ++i) {
      auto file = SegmentFile::Create(fs_.get(), dir_.string(),
                                      (dir_ / absl::StrCat("seg.", i, ".evseg")).string(), 1, i);
      EXPECT_TRUE(file.ok()) << file.status();
      if (!file.ok()) return {};
      EXPECT_TRUE((*file)->Append(0, 0, std::string(1000 + i, 'x')).ok());
      EXPECT_TRUE((*file)->unsynced());
      files.push_back(*std::move(file));
    }
    return files;
  }

  static std::vector<SegmentFile*> Pointers(
      const std::vector<std::unique_ptr<SegmentFile>>& files) {
    std::vector<SegmentFile*> pointers;
    for (const auto& file : files) pointers.push_back(file.get());
    return pointers;
  }

  fs::path dir_;
  std::shared_ptr<FaultInjectionFileSystem> fs_;
};

TEST_F(FileSyncerTest, EveryFileOfAJobIsDurableWhenWaitReturns) {
  FileSyncer syncer(3);
  // More files than threads, then fewer, then none.
  for (int n : {7, 2, 0}) {
    std::vector<std::unique_ptr<SegmentFile>> files = FilesWithUnsyncedFrames(n);
    ASSERT_EQ(files.size(), static_cast<size_t>(n));
    syncer.Start(Pointers(files));
    ASSERT_TRUE(syncer.Wait().ok());
    for (const auto& file : files) {
      EXPECT_FALSE(file->unsynced());
      EXPECT_EQ(file->synced_size(), file->size());
      // What the file system would keep after a power cut now: the whole file.
      EXPECT_EQ(fs_->SyncedSize(file->path()), static_cast<int64_t>(file->size()));
    }
  }
}

TEST_F(FileSyncerTest, AFailedSyncIsReportedAndLaterJobsStillRun) {
  FileSyncer syncer(2);
  std::vector<std::unique_ptr<SegmentFile>> files = FilesWithUnsyncedFrames(3);
  ASSERT_EQ(files.size(), 3u);
  fs_->SetActive(false);  // every fsync fails
  syncer.Start(Pointers(files));
  const absl::Status failed = syncer.Wait();
  EXPECT_FALSE(failed.ok());
  for (const auto& file : files) EXPECT_TRUE(file->unsynced());
  fs_->SetActive(true);
  std::vector<std::unique_ptr<SegmentFile>> more = FilesWithUnsyncedFrames(2);
  syncer.Start(Pointers(more));
  EXPECT_TRUE(syncer.Wait().ok());
  for (const auto& file : more) EXPECT_FALSE(file->unsynced());
}

}  // namespace
}  // namespace evlog::storage
