// Tests of FaultInjectionFileSystem through the rocksdb::FileSystem API: what a power cut keeps
// and removes, and what fails while the power is off.
#include "storage/testing/fault_injection_fs.h"

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace evlog::storage {
namespace {

using UnsyncedData = FaultInjectionFileSystem::UnsyncedData;

std::string MakeTempDir() {
  const char* base = getenv("TEST_TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/fault_fs_test.XXXXXX";
  char* dir = mkdtemp(pattern.data());
  EXPECT_NE(dir, nullptr) << "mkdtemp " << pattern;
  return pattern;
}

class FaultInjectionFileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    fs_ = std::make_shared<FaultInjectionFileSystem>();
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::unique_ptr<rocksdb::FSWritableFile> NewFile(const std::string& name) {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    rocksdb::IOStatus s = fs_->NewWritableFile(Path(name), rocksdb::FileOptions(), &file, nullptr);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return file;
  }

  void Append(rocksdb::FSWritableFile* file, const std::string& data) {
    rocksdb::IOStatus s = file->Append(data, io_, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void Sync(rocksdb::FSWritableFile* file) {
    rocksdb::IOStatus s = file->Sync(io_, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void Close(rocksdb::FSWritableFile* file) {
    rocksdb::IOStatus s = file->Close(io_, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  void FsyncDir() {
    std::unique_ptr<rocksdb::FSDirectory> dir;
    rocksdb::IOStatus s = fs_->NewDirectory(dir_, io_, &dir, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = dir->Fsync(io_, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Writes `data` to a new file, syncs it and its directory, and closes it.
  void WriteDurableFile(const std::string& name, const std::string& data) {
    auto file = NewFile(name);
    ASSERT_NE(file, nullptr);
    Append(file.get(), data);
    Sync(file.get());
    Close(file.get());
    FsyncDir();
  }

  bool Exists(const std::string& name) const { return std::filesystem::exists(Path(name)); }

  std::string Contents(const std::string& name) {
    std::string data;
    rocksdb::IOStatus s = rocksdb::ReadFileToString(fs_.get(), Path(name), &data);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return data;
  }

  void PowerCut(UnsyncedData unsynced = UnsyncedData::kDrop, uint64_t seed = 0) {
    absl::Status s = fs_->SimulatePowerCut(unsynced, seed);
    ASSERT_TRUE(s.ok()) << s;
  }

  std::string dir_;
  std::shared_ptr<FaultInjectionFileSystem> fs_;
  rocksdb::IOOptions io_;
};

TEST_F(FaultInjectionFileSystemTest, PowerCutTruncatesFileToSyncedLength) {
  auto file = NewFile("wal");
  FsyncDir();
  Append(file.get(), "synced-");
  Sync(file.get());
  Append(file.get(), "lost");
  Close(file.get());
  EXPECT_EQ(Contents("wal"), "synced-lost");
  EXPECT_EQ(fs_->SyncedSize(Path("wal")), 7);

  PowerCut();

  EXPECT_EQ(Contents("wal"), "synced-");
}

TEST_F(FaultInjectionFileSystemTest, FsyncMakesEverythingAppendedDurable) {
  auto file = NewFile("wal");
  FsyncDir();
  Append(file.get(), "abc");
  Append(file.get(), "def");
  rocksdb::IOStatus s = file->Fsync(io_, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Append(file.get(), "ghi");
  Close(file.get());

  PowerCut();

  EXPECT_EQ(Contents("wal"), "abcdef");
}

TEST_F(FaultInjectionFileSystemTest, CloseAndRangeSyncDoNotSync) {
  auto file = NewFile("sst");
  FsyncDir();
  Append(file.get(), "0123456789");
  rocksdb::IOStatus s = file->RangeSync(0, 10, io_, nullptr);
  ASSERT_TRUE(s.ok()) << s.ToString();
  Close(file.get());

  PowerCut();

  ASSERT_TRUE(Exists("sst"));
  EXPECT_EQ(Contents("sst"), "");
}

TEST_F(FaultInjectionFileSystemTest, NewFileDisappearsWhenDirectoryWasNotFsynced) {
  auto file = NewFile("000007.log");
  Append(file.get(), "data");
  Sync(file.get());  // the data is durable, but the directory entry is not
  Close(file.get());
  EXPECT_EQ(fs_->UndurableEntries(dir_), std::vector<std::string>{"000007.log"});

  PowerCut();

  EXPECT_FALSE(Exists("000007.log"));
}

TEST_F(FaultInjectionFileSystemTest, NewFileStaysWhenDirectoryWasFsynced) {
  auto file = NewFile("000007.log");
  Append(file.get(), "data");
  Sync(file.get());
  Close(file.get());
  FsyncDir();
  EXPECT_TRUE(fs_->UndurableEntries(dir_).empty());

  PowerCut();

  ASSERT_TRUE(Exists("000007.log"));
  EXPECT_EQ(Contents("000007.log"), "data");
}

TEST_F(FaultInjectionFileSystemTest, FsyncWithDirOptionsAlsoMakesEntriesDurable) {
  auto file = NewFile("MANIFEST-000001");
  Append(file.get(), "edit");
  Sync(file.get());
  Close(file.get());
  std::unique_ptr<rocksdb::FSDirectory> dir;
  ASSERT_TRUE(fs_->NewDirectory(dir_ + "/", io_, &dir, nullptr).ok());  // trailing '/' on purpose
  rocksdb::IOStatus s = dir->FsyncWithDirOptions(
      io_, nullptr, rocksdb::DirFsyncOptions(rocksdb::DirFsyncOptions::kNewFileSynced));
  ASSERT_TRUE(s.ok()) << s.ToString();

  PowerCut();

  EXPECT_EQ(Contents("MANIFEST-000001"), "edit");
}

TEST_F(FaultInjectionFileSystemTest, OnlyEntriesOfTheFsyncedDirectoryBecomeDurable) {
  const std::string sub = Path("sub");
  ASSERT_TRUE(fs_->CreateDir(sub, io_, nullptr).ok());
  auto in_sub = NewFile("sub/a");
  auto in_top = NewFile("b");
  Sync(in_sub.get());
  Sync(in_top.get());
  Close(in_sub.get());
  Close(in_top.get());
  FsyncDir();  // the top directory only

  PowerCut();

  EXPECT_FALSE(Exists("sub/a"));
  EXPECT_TRUE(Exists("b"));
}

TEST_F(FaultInjectionFileSystemTest, RenameOverDurableFileIsUndoneWithoutDirectoryFsync) {
  WriteDurableFile("CURRENT", "MANIFEST-000001\n");
  auto tmp = NewFile("000002.dbtmp");
  Append(tmp.get(), "MANIFEST-000002\n");
  Sync(tmp.get());
  Close(tmp.get());
  ASSERT_TRUE(fs_->RenameFile(Path("000002.dbtmp"), Path("CURRENT"), io_, nullptr).ok());
  EXPECT_EQ(Contents("CURRENT"), "MANIFEST-000002\n");

  PowerCut();

  EXPECT_EQ(Contents("CURRENT"), "MANIFEST-000001\n");
  EXPECT_FALSE(Exists("000002.dbtmp"));
}

TEST_F(FaultInjectionFileSystemTest, RenameOverDurableFileStaysAfterDirectoryFsync) {
  WriteDurableFile("CURRENT", "MANIFEST-000001\n");
  auto tmp = NewFile("000002.dbtmp");
  Append(tmp.get(), "MANIFEST-000002\n");
  Sync(tmp.get());
  Close(tmp.get());
  ASSERT_TRUE(fs_->RenameFile(Path("000002.dbtmp"), Path("CURRENT"), io_, nullptr).ok());
  FsyncDir();

  PowerCut();

  EXPECT_EQ(Contents("CURRENT"), "MANIFEST-000002\n");
}

TEST_F(FaultInjectionFileSystemTest, RenamedFileKeepsItsSyncedLength) {
  auto file = NewFile("a.tmp");
  Append(file.get(), "kept");
  Sync(file.get());
  Append(file.get(), "-lost");
  Close(file.get());
  ASSERT_TRUE(fs_->RenameFile(Path("a.tmp"), Path("a"), io_, nullptr).ok());
  FsyncDir();

  PowerCut();

  EXPECT_EQ(Contents("a"), "kept");
}

TEST_F(FaultInjectionFileSystemTest, DeletedFileIsNotTouchedByPowerCut) {
  auto file = NewFile("old.log");
  Append(file.get(), "x");
  Close(file.get());
  ASSERT_TRUE(fs_->DeleteFile(Path("old.log"), io_, nullptr).ok());
  EXPECT_EQ(fs_->SyncedSize(Path("old.log")), -1);
  EXPECT_TRUE(fs_->UndurableEntries(dir_).empty());

  PowerCut();

  EXPECT_FALSE(Exists("old.log"));
}

TEST_F(FaultInjectionFileSystemTest, WritesFailAndChangeNothingWhilePowerIsOff) {
  WriteDurableFile("durable", "abc");
  auto file = NewFile("wal");
  FsyncDir();
  Append(file.get(), "before");
  std::unique_ptr<rocksdb::FSDirectory> dir;
  ASSERT_TRUE(fs_->NewDirectory(dir_, io_, &dir, nullptr).ok());

  fs_->SetActive(false);
  EXPECT_FALSE(fs_->IsActive());

  EXPECT_TRUE(file->Append("after", io_, nullptr).IsIOError());
  EXPECT_TRUE(file->Sync(io_, nullptr).IsIOError());
  EXPECT_TRUE(file->Fsync(io_, nullptr).IsIOError());
  EXPECT_TRUE(file->Truncate(0, io_, nullptr).IsIOError());
  EXPECT_TRUE(dir->Fsync(io_, nullptr).IsIOError());
  std::unique_ptr<rocksdb::FSWritableFile> other;
  EXPECT_TRUE(
      fs_->NewWritableFile(Path("new"), rocksdb::FileOptions(), &other, nullptr).IsIOError());
  EXPECT_TRUE(fs_->ReopenWritableFile(Path("durable"), rocksdb::FileOptions(), &other, nullptr)
                  .IsIOError());
  EXPECT_TRUE(other == nullptr);
  EXPECT_TRUE(fs_->RenameFile(Path("durable"), Path("renamed"), io_, nullptr).IsIOError());
  EXPECT_TRUE(fs_->DeleteFile(Path("durable"), io_, nullptr).IsIOError());
  EXPECT_TRUE(fs_->Truncate(Path("durable"), 0, io_, nullptr).IsIOError());
  EXPECT_TRUE(fs_->CreateDir(Path("subdir"), io_, nullptr).IsIOError());
  EXPECT_TRUE(fs_->CreateDirIfMissing(Path("subdir"), io_, nullptr).IsIOError());
  // Reads still work, and nothing above changed the disk.
  EXPECT_EQ(Contents("durable"), "abc");
  EXPECT_EQ(Contents("wal"), "before");
  EXPECT_FALSE(Exists("new"));
  EXPECT_FALSE(Exists("renamed"));
  EXPECT_FALSE(Exists("subdir"));
  EXPECT_EQ(fs_->sync_count(), 1u);  // only WriteDurableFile's
  // Closing works without power, and syncs nothing.
  Close(file.get());

  PowerCut();
  fs_->SetActive(true);

  EXPECT_EQ(Contents("wal"), "");
  EXPECT_EQ(Contents("durable"), "abc");
  auto again = NewFile("new");
  ASSERT_NE(again, nullptr);
  Append(again.get(), "works");
  Sync(again.get());
  Close(again.get());
}

TEST_F(FaultInjectionFileSystemTest, WithNothingLastsWritesSucceedButDoNotSurviveTheCut) {
  fs_->SetPowerOffWrites(FaultInjectionFileSystem::PowerOffWrites::kNothingLasts);
  WriteDurableFile("durable", "abc");
  auto file = NewFile("wal");
  FsyncDir();
  Append(file.get(), "synced");
  Sync(file.get());
  std::unique_ptr<rocksdb::FSDirectory> dir;
  ASSERT_TRUE(fs_->NewDirectory(dir_, io_, &dir, nullptr).ok());
  const uint64_t syncs = fs_->sync_count();

  fs_->SetActive(false);
  // Writes and syncs of open files, and new files, succeed, and the process sees its writes.
  Append(file.get(), "+after");
  Sync(file.get());
  EXPECT_TRUE(file->Fsync(io_, nullptr).ok());
  EXPECT_TRUE(dir->Fsync(io_, nullptr).ok());
  auto fresh = NewFile("new");
  ASSERT_NE(fresh, nullptr);
  Append(fresh.get(), "new data");
  Sync(fresh.get());
  EXPECT_EQ(Contents("wal"), "synced+after");
  EXPECT_EQ(fs_->SyncedSize(Path("wal")), 6);  // nothing after the cut became durable
  EXPECT_EQ(fs_->sync_count(), syncs);
  // What the model could not undo still fails.
  std::unique_ptr<rocksdb::FSWritableFile> other;
  EXPECT_TRUE(
      fs_->NewWritableFile(Path("durable"), rocksdb::FileOptions(), &other, nullptr).IsIOError());
  EXPECT_TRUE(file->Truncate(0, io_, nullptr).IsIOError());
  EXPECT_TRUE(fs_->RenameFile(Path("durable"), Path("renamed"), io_, nullptr).IsIOError());
  EXPECT_TRUE(fs_->DeleteFile(Path("durable"), io_, nullptr).IsIOError());
  EXPECT_TRUE(fs_->CreateDir(Path("subdir"), io_, nullptr).IsIOError());
  Close(file.get());
  Close(fresh.get());

  PowerCut();
  fs_->SetActive(true);

  EXPECT_EQ(Contents("wal"), "synced");
  EXPECT_EQ(Contents("durable"), "abc");
  EXPECT_FALSE(Exists("new"));  // its directory entry was never made durable
}

TEST_F(FaultInjectionFileSystemTest, WithNothingLastsNoByteWrittenAfterTheCutIsKept) {
  fs_->SetPowerOffWrites(FaultInjectionFileSystem::PowerOffWrites::kNothingLasts);
  bool kept_unsynced = false;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    const std::string name = absl::StrCat("f", seed);
    auto file = NewFile(name);
    ASSERT_NE(file, nullptr);
    FsyncDir();
    Append(file.get(), "synced");
    Sync(file.get());
    Append(file.get(), "+before");  // unsynced, written before the cut: may be kept
    fs_->SetActive(false);
    Append(file.get(), "+after");
    Close(file.get());
    PowerCut(UnsyncedData::kKeepRandomPrefix, seed);
    fs_->SetActive(true);
    const std::string kept = Contents(name);
    EXPECT_EQ(std::string("synced+before").substr(0, kept.size()), kept) << "seed " << seed;
    kept_unsynced |= kept.size() > 6;
  }
  EXPECT_TRUE(kept_unsynced);  // the seeds above do keep unsynced bytes written before the cut
}

TEST_F(FaultInjectionFileSystemTest, CutPowerAfterWritesLetsThatManyWritesThrough) {
  auto file = NewFile("wal");
  FsyncDir();
  fs_->CutPowerAfterWrites(2);
  Append(file.get(), "one");
  Sync(file.get());
  EXPECT_TRUE(fs_->IsActive());
  EXPECT_TRUE(file->Append("two", io_, nullptr).IsIOError());  // the third write
  EXPECT_FALSE(fs_->IsActive());
  EXPECT_TRUE(file->Sync(io_, nullptr).IsIOError());
  Close(file.get());

  PowerCut();
  fs_->SetActive(true);

  EXPECT_EQ(Contents("wal"), "one");
  auto again = NewFile("again");  // disarmed by SetActive(true)
  for (int i = 0; i < 5; ++i) Append(again.get(), "x");
  Close(again.get());
}

TEST_F(FaultInjectionFileSystemTest, SetActiveDisarmsADelayedCut) {
  fs_->CutPowerAfterWrites(0);
  fs_->SetActive(true);
  auto file = NewFile("wal");
  ASSERT_NE(file, nullptr);
  Append(file.get(), "data");
  EXPECT_TRUE(fs_->IsActive());
  Close(file.get());
}

TEST_F(FaultInjectionFileSystemTest, PowerCutRequiresFilesClosed) {
  auto file = NewFile("wal");
  Append(file.get(), "data");

  absl::Status s = fs_->SimulatePowerCut();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_EQ(Contents("wal"), "data");  // nothing changed

  file.reset();  // destroying a file closes it
  PowerCut();
  EXPECT_FALSE(Exists("wal"));
}

TEST_F(FaultInjectionFileSystemTest, SyncCountCountsSuccessfulFileSyncs) {
  auto file = NewFile("wal");
  EXPECT_EQ(fs_->sync_count(), 0u);
  Sync(file.get());
  ASSERT_TRUE(file->Fsync(io_, nullptr).ok());
  EXPECT_EQ(fs_->sync_count(), 2u);
  fs_->SetActive(false);
  EXPECT_TRUE(file->Sync(io_, nullptr).IsIOError());
  EXPECT_EQ(fs_->sync_count(), 2u);
  fs_->SetActive(true);
  FsyncDir();
  EXPECT_EQ(fs_->dir_sync_count(), 1u);
  Close(file.get());
}

TEST_F(FaultInjectionFileSystemTest, PowerCutForgetsTrackingAfterwards) {
  auto file = NewFile("wal");
  FsyncDir();
  Append(file.get(), "ab");
  Sync(file.get());
  Close(file.get());
  PowerCut();
  EXPECT_EQ(fs_->SyncedSize(Path("wal")), -1);

  // What survived a power cut is durable: a second one changes nothing.
  PowerCut();
  EXPECT_EQ(Contents("wal"), "ab");
}

TEST_F(FaultInjectionFileSystemTest, ReopenedFileKeepsItsDurablePrefix) {
  WriteDurableFile("LOG.old", "durable");
  PowerCut();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  ASSERT_TRUE(
      fs_->ReopenWritableFile(Path("LOG.old"), rocksdb::FileOptions(), &file, nullptr).ok());
  Append(file.get(), "+synced");
  Sync(file.get());
  Append(file.get(), "+lost");
  Close(file.get());

  PowerCut();

  EXPECT_EQ(Contents("LOG.old"), "durable+synced");
}

TEST_F(FaultInjectionFileSystemTest, KeepRandomPrefixKeepsBetweenSyncedAndWritten) {
  const std::string synced = "0123456789";
  const std::string unsynced = "abcdefghijklmnopqrstuvwxyz";
  std::set<size_t> lengths;
  for (uint64_t seed = 0; seed < 30; ++seed) {
    SCOPED_TRACE(seed);
    auto file = NewFile("wal");
    FsyncDir();
    Append(file.get(), synced);
    Sync(file.get());
    Append(file.get(), unsynced);
    Close(file.get());

    PowerCut(UnsyncedData::kKeepRandomPrefix, seed);

    const std::string left = Contents("wal");
    ASSERT_GE(left.size(), synced.size());
    ASSERT_LE(left.size(), synced.size() + unsynced.size());
    EXPECT_EQ(left, (synced + unsynced).substr(0, left.size()));
    lengths.insert(left.size());
  }
  EXPECT_TRUE(lengths.contains(synced.size()));                    // none kept
  EXPECT_TRUE(lengths.contains(synced.size() + unsynced.size()));  // all kept
  EXPECT_GT(lengths.size(), 2u);                                   // and cuts in between
}

TEST_F(FaultInjectionFileSystemTest, EnvDoesItsFileIOThroughTheFileSystem) {
  std::unique_ptr<rocksdb::Env> env = NewFaultInjectionEnv(fs_);
  ASSERT_NE(env, nullptr);
  EXPECT_EQ(env->GetFileSystem().get(), fs_.get());
  rocksdb::Status s = rocksdb::WriteStringToFile(env.get(), "hello", Path("IDENTITY"),
                                                 /*should_sync=*/true);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(fs_->SyncedSize(Path("IDENTITY")), 5);
  EXPECT_EQ(fs_->UndurableEntries(dir_), std::vector<std::string>{"IDENTITY"});

  fs_->SetActive(false);
  s = rocksdb::WriteStringToFile(env.get(), "x", Path("other"), /*should_sync=*/true);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  fs_->SetActive(true);

  PowerCut();
  EXPECT_FALSE(Exists("IDENTITY"));
}

TEST_F(FaultInjectionFileSystemTest, ConcurrentWritersEachKeepTheirSyncedPrefix) {
  constexpr int kThreads = 4;
  constexpr int kWritesPerThread = 200;
  std::vector<std::string> written(kThreads);
  std::vector<size_t> synced_length(kThreads, 0);
  std::vector<std::unique_ptr<rocksdb::FSWritableFile>> files;
  for (int t = 0; t < kThreads; ++t) files.push_back(NewFile(absl::StrCat("f", t)));
  FsyncDir();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int i = 0; i < kWritesPerThread; ++i) {
        const std::string piece(1 + rng() % 16, static_cast<char>('a' + (i % 26)));
        ASSERT_TRUE(files[t]->Append(piece, io_, nullptr).ok());
        written[t] += piece;
        if (rng() % 4 == 0) {
          ASSERT_TRUE(files[t]->Sync(io_, nullptr).ok());
          synced_length[t] = written[t].size();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (auto& file : files) Close(file.get());

  PowerCut();

  for (int t = 0; t < kThreads; ++t) {
    SCOPED_TRACE(t);
    EXPECT_EQ(Contents(absl::StrCat("f", t)), written[t].substr(0, synced_length[t]));
  }
}

}  // namespace
}  // namespace evlog::storage
