// FaultInjectionFileSystem: a RocksDB file system that can lose power, for durability tests.
//
// What it is for: evlog promises that an acknowledged event is never lost, even by a power
// cut. A kill -9 cannot test that (the OS page cache survives it), so tests run a LogStore on
// this file system (Options::env = the Env from NewFaultInjectionEnv), cut the power at a
// random moment, let the machine "reboot", reopen the store and check what survived.
//
// What it models. Every call is passed to a real file system (by default the POSIX one), so
// the store sees its own writes while it runs. Alongside, this file system remembers what a
// power cut would lose:
//   - Per file opened for writing: the bytes appended and the bytes synced. Sync and Fsync
//     make everything appended so far durable; RangeSync, Flush and Close make nothing
//     durable (sync_file_range and close do not flush the disk cache or the file's metadata).
//   - Per directory: the names created in it, or renamed into it, since its last Fsync. Such
//     an entry is not durable: a power cut removes it (a name that was renamed over an
//     existing, durable file gets that file's previous contents back).
//   - SetActive(false) is the moment power is lost: from then on every write, sync, create,
//     rename and delete fails with an IOError and changes nothing, as on a machine whose disk
//     has gone away. Reads still work, so the store can be closed. CutPowerAfterWrites(n)
//     does the same just before the (n+1)th write from now. With
//     SetPowerOffWrites(kNothingLasts), writes and syncs to open files succeed instead but
//     nothing done after the cut lasts, as for a process that runs on for a moment on a
//     machine that is already dead.
//   - SimulatePowerCut() is the reboot: after the store is closed it truncates every file to
//     its synced length (or, on request, to a random length between synced and written, as
//     if some dirty pages had reached the disk first: a torn tail) and removes undurable
//     directory entries. Afterwards everything on disk counts as durable.
//
// What it does not model (a test passing here says nothing about these):
//   - Torn or reordered sectors inside a file: a file keeps a prefix of its bytes, never
//     a later byte without the earlier ones, and synced bytes are never damaged.
//   - Disks that acknowledge a flush without doing it, and bit rot.
//   - Deletions being undone: a file deleted without a directory fsync stays deleted.
//   - Renames of durable files being undone: renaming a file whose own entry is durable is
//     treated as durable at once (the old name does not come back). Only a name that was
//     never made durable before its rename is tracked, as RocksDB renames new files into
//     place (CURRENT, OPTIONS, IDENTITY) and fsyncs the directory afterwards.
//   - Directories themselves: CreateDir and DeleteDir are durable at once.
//   - Files written through NewRandomRWFile or memory maps, and RocksDB's info LOG (the base
//     file system writes it directly); their data is left as written.
//   - The precise instant of the cut: a write that is already past its check when
//     SetActive(false) is called completes, as a write racing a power cut may.
//
// Example:
//   auto fs = std::make_shared<FaultInjectionFileSystem>();
//   std::unique_ptr<rocksdb::Env> env = NewFaultInjectionEnv(fs);
//   Options options;
//   options.env = env.get();
//   ... open a LogStore, append from several threads, then:
//   fs->SetActive(false);        // power is lost; in-flight appends fail
//   store.reset();               // the process goes away
//   ASSERT_TRUE(fs->SimulatePowerCut().ok());  // only synced data is left on disk
//   fs->SetActive(true);         // the machine is back
//   ... reopen and check.
//
// Thread safety: every method may be called from any thread concurrently, except
// SimulatePowerCut, which requires that no file is open for writing (close the store first).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "rocksdb/env.h"
#include "rocksdb/file_system.h"

namespace evlog::storage {

class FaultInjectionFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  // What a power cut does with bytes that were written but not synced.
  enum class UnsyncedData {
    kDrop,  // lose them all: each file is cut back to its synced length
    // Keep a random prefix of them, chosen per file: none, all, or a uniformly random length,
    // each a third of the time (so whole unsynced writes survive often enough to matter).
    kKeepRandomPrefix,
  };

  // Wraps `base`, which does the real I/O. The default is the machine's POSIX file system.
  // Starts active, with nothing tracked: files that exist already count as durable.
  explicit FaultInjectionFileSystem(
      std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default());
  ~FaultInjectionFileSystem() override;

  FaultInjectionFileSystem(const FaultInjectionFileSystem&) = delete;
  FaultInjectionFileSystem& operator=(const FaultInjectionFileSystem&) = delete;

  // The name RocksDB reports for this file system (in its LOG and options).
  static const char* kClassName() { return "EvlogFaultInjectionFileSystem"; }
  const char* Name() const override { return kClassName(); }

  // What the file system does with writes while the power is off.
  enum class PowerOffWrites {
    // Every write, sync, create, rename, delete and truncate fails with an IOError and changes
    // nothing, as on a machine whose disk has gone away. The default.
    kFail,
    // Writes, syncs and closes of files already open, and creating new files, succeed, but
    // nothing done after the cut survives the power cut: syncs and directory fsyncs make
    // nothing durable (nor count in sync_count), and new files are undurable entries. What the
    // model could not undo still fails: deleting, renaming, linking, truncating (a path or an
    // open file), recreating or reusing an existing file, directories, NewRandomRWFile.
    // Why: RocksDB then never sees a failed write or sync on a file it has open. Debian's
    // RocksDB 7.8 is built with assertions, and a background flush syncing a write-ahead log
    // after a write or sync of that log failed aborts the process (WritableFileWriter's
    // sync_without_flush_called_ assertion), so a cut that made writes fail could kill the
    // test process, depending on timing.
    kNothingLasts,
  };

  // Chooses the behaviour above (kFail until called). Takes effect for calls that start after
  // it returns. Any thread.
  void SetPowerOffWrites(PowerOffWrites mode);

  // Turns the power off (false) or on (true). While off, every write, sync, create, rename,
  // delete and truncate through this file system, or through a file or directory it opened,
  // fails with rocksdb::IOStatus::IOError and has no effect (or, with kNothingLasts, some of
  // them succeed without lasting: see PowerOffWrites); reads and opening files for reading
  // still work. Takes effect for calls that start after it returns.
  void SetActive(bool active);

  // True while the power is on: unless SetActive(false) was called, or a cut armed by
  // CutPowerAfterWrites happened, since the last SetActive(true).
  bool IsActive() const;

  // Arms a delayed power cut: the next `writes` write operations (every call that fails while
  // the power is off, except closing a file) go through, and the power goes off just before
  // the one after them, as if SetActive(false) had been called then. This cuts the power in
  // the middle of RocksDB's multi-step operations (between a write-ahead-log append and its
  // sync, between writing a file and fsyncing its directory, ...), which a cut timed from
  // outside rarely hits. SetActive() disarms it. No effect while the power is off.
  void CutPowerAfterWrites(uint64_t writes);

  // The reboot after a power cut. Removes every directory entry created or renamed into its
  // directory since that directory's last successful Fsync (restoring the earlier contents of
  // a durable file that such a rename replaced), then cuts every file written through this
  // file system back to its synced length (kDrop) or to a random length between its synced
  // and written lengths, chosen with `seed` (kKeepRandomPrefix). Then forgets all tracking:
  // what is on disk now counts as durable. Does not change IsActive().
  // REQUIRES: no file opened for writing through this file system is still open (destroy the
  // store first).
  // Errors: FAILED_PRECONDITION if a file is still open for writing (nothing is changed);
  // INTERNAL if the base file system fails to delete, restore or truncate a file (the state
  // on disk is then partly cut).
  absl::Status SimulatePowerCut(UnsyncedData unsynced = UnsyncedData::kDrop, uint64_t seed = 0);

  // Number of successful file Sync/Fsync calls since construction. Not reset by a power cut.
  uint64_t sync_count() const;

  // Number of successful directory Fsync calls since construction. Not reset by a power cut.
  uint64_t dir_sync_count() const;

  // For tests: the number of bytes of `path` that a power cut now would keep
  // with kDrop, or -1 if `path` is not tracked (never written through this file system since
  // the last power cut, or deleted since).
  int64_t SyncedSize(const std::string& path) const;

  // For tests of this class: the names in `dir` that a power cut now would remove (created or
  // renamed into `dir` since its last Fsync), sorted.
  std::vector<std::string> UndurableEntries(const std::string& dir) const;

  // rocksdb::FileSystem: writes are tracked and fail while inactive; the rest is forwarded.
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewRandomRWFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io_opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus Truncate(const std::string& fname, size_t size,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDir(const std::string& dirname, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus CreateDirIfMissing(const std::string& dirname,
                                       const rocksdb::IOOptions& options,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteDir(const std::string& dirname, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& dest,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus LinkFile(const std::string& src, const std::string& dest,
                             const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override;

 private:
  class State;         // what a power cut would lose; shared with open files
  class WritableFile;  // tracks appends and syncs of one file
  class Directory;     // tracks fsyncs of one directory

  std::shared_ptr<State> state_;
};

// Returns an Env that does its file I/O through `fs` (and everything else, such as threads
// and clocks, as the default Env does), to be put in evlog::storage::Options::env.
// `fs` must not be null; the Env keeps it alive. The Env must outlive every store using it.
std::unique_ptr<rocksdb::Env> NewFaultInjectionEnv(
    const std::shared_ptr<FaultInjectionFileSystem>& fs);

}  // namespace evlog::storage
