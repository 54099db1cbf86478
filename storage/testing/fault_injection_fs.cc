#include "storage/testing/fault_injection_fs.h"

#include <algorithm>
#include <atomic>
#include <limits>
#include <map>
#include <optional>
#include <random>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace evlog::storage {
namespace {

using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

// Collapses repeated '/' and drops a trailing '/', so that a file's directory part matches the
// name the directory was opened with.
std::string NormalizePath(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out.push_back(c);
  }
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// Splits a normalized path into (directory, name in it).
std::pair<std::string, std::string> SplitPath(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

IOStatus PowerIsOff(const char* operation, const std::string& path) {
  return IOStatus::IOError(absl::StrCat("power is off (FaultInjectionFileSystem): ", operation),
                           path);
}

// Cuts `path` back to `size` bytes through `fs`. (RocksDB's POSIX file system does not
// implement FileSystem::Truncate, but its writable files can truncate.)
IOStatus TruncateFile(rocksdb::FileSystem* fs, const std::string& path, uint64_t size) {
  const IOOptions io;
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = fs->ReopenWritableFile(path, rocksdb::FileOptions(), &file, nullptr);
  if (!s.ok()) return s;
  s = file->Truncate(size, io, nullptr);
  IOStatus closed = file->Close(io, nullptr);
  return s.ok() ? closed : s;
}

// What is known of one file written through the file system. Hard links share one.
struct FileState {
  uint64_t written = 0;  // length of the file as written (appended) so far
  uint64_t synced = 0;   // length that a power cut keeps; invariant: synced <= written
  // Bytes from here on were written after the cut (kNothingLasts): a power cut keeps none of
  // them. Invariant: synced <= vanish_from.
  uint64_t vanish_from = std::numeric_limits<uint64_t>::max();
};

}  // namespace

// Everything a power cut would lose, shared by the file system and the files it opened (they
// may outlive it). All tracking is guarded by one mutex; I/O is never done while holding it,
// except in SimulatePowerCut, when nothing else may be writing.
class FaultInjectionFileSystem::State {
 public:
  bool active() const { return active_.load(std::memory_order_acquire); }

  void set_active(bool active) {
    armed_.store(false, std::memory_order_release);
    active_.store(active, std::memory_order_release);
  }

  void ArmCut(uint64_t writes) {
    if (!active()) return;
    writes_left_.store(static_cast<int64_t>(writes), std::memory_order_release);
    armed_.store(true, std::memory_order_release);
  }

  void set_nothing_lasts(bool nothing_lasts) {
    nothing_lasts_.store(nothing_lasts, std::memory_order_release);
  }

  // What becomes of a write operation that kNothingLasts may let through (see the header).
  enum class Verdict {
    kLasts,     // the power is on: it goes through and counts
    kVanishes,  // the power is off (kNothingLasts): it goes through but must not last
    kFails,     // the power is off (kFail): it fails and changes nothing
  };
  Verdict ForWrite() {
    if (PowerOnForWrite()) return Verdict::kLasts;
    return nothing_lasts_.load(std::memory_order_acquire) ? Verdict::kVanishes : Verdict::kFails;
  }

  // Called at the start of every write operation: true if it may proceed. Counts the write
  // against an armed cut, and cuts the power when the cut is due.
  bool PowerOnForWrite() {
    if (armed_.load(std::memory_order_acquire) &&
        writes_left_.fetch_sub(1, std::memory_order_acq_rel) <= 0) {
      active_.store(false, std::memory_order_release);
      armed_.store(false, std::memory_order_release);
    }
    return active();
  }

  mutable absl::Mutex mu;
  // Normalized path -> state of a file written through this file system since the last power
  // cut. A file that is not here is durable as it is on disk.
  std::map<std::string, std::shared_ptr<FileState>> files ABSL_GUARDED_BY(mu);
  // Directory -> names created or renamed into it since its last fsync -> what a power cut
  // leaves under that name: nullopt to remove it, or the contents it had when it was durable.
  std::map<std::string, std::map<std::string, std::optional<std::string>>> undurable
      ABSL_GUARDED_BY(mu);
  int64_t open_writable_files ABSL_GUARDED_BY(mu) = 0;
  uint64_t syncs ABSL_GUARDED_BY(mu) = 0;
  uint64_t dir_syncs ABSL_GUARDED_BY(mu) = 0;

  bool IsUndurable(const std::string& path) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const auto [dir, name] = SplitPath(path);
    auto it = undurable.find(dir);
    return it != undurable.end() && it->second.contains(name);
  }

  // Records that `path`'s entry is not durable. An earlier record for the same name wins: it
  // describes the state at the directory's last fsync.
  void MarkUndurable(const std::string& path, std::optional<std::string> previous)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const auto [dir, name] = SplitPath(path);
    undurable[dir].try_emplace(name, std::move(previous));
  }

  void ForgetEntry(const std::string& path) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const auto [dir, name] = SplitPath(path);
    auto it = undurable.find(dir);
    if (it == undurable.end()) return;
    it->second.erase(name);
    if (it->second.empty()) undurable.erase(it);
  }

 private:
  std::atomic<bool> active_{true};
  std::atomic<bool> armed_{false};  // a cut is due after writes_left_ more writes
  std::atomic<int64_t> writes_left_{0};
  std::atomic<bool> nothing_lasts_{false};  // PowerOffWrites::kNothingLasts
};

// A file opened for writing: forwards to the real file and counts what was written and synced.
class FaultInjectionFileSystem::WritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  WritableFile(std::unique_ptr<rocksdb::FSWritableFile> target, std::shared_ptr<State> state,
               std::shared_ptr<FileState> file, std::string path)
      : FSWritableFileOwnerWrapper(std::move(target)),
        state_(std::move(state)),
        file_(std::move(file)),
        path_(std::move(path)) {}

  ~WritableFile() override { MarkClosed(); }

  IOStatus Append(const rocksdb::Slice& data, const IOOptions& options,
                  IODebugContext* dbg) override {
    return TrackedWrite("Append", std::nullopt, data.size(),
                        [&] { return FSWritableFileOwnerWrapper::Append(data, options, dbg); });
  }

  IOStatus Append(const rocksdb::Slice& data, const IOOptions& options,
                  const rocksdb::DataVerificationInfo& info, IODebugContext* dbg) override {
    return TrackedWrite("Append", std::nullopt, data.size(), [&] {
      return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
    });
  }

  IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const IOOptions& options,
                            IODebugContext* dbg) override {
    return TrackedWrite("PositionedAppend", offset, data.size(), [&] {
      return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, dbg);
    });
  }

  IOStatus PositionedAppend(const rocksdb::Slice& data, uint64_t offset, const IOOptions& options,
                            const rocksdb::DataVerificationInfo& info,
                            IODebugContext* dbg) override {
    return TrackedWrite("PositionedAppend", offset, data.size(), [&] {
      return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options, info, dbg);
    });
  }

  IOStatus Truncate(uint64_t size, const IOOptions& options, IODebugContext* dbg) override {
    // A truncation could lower the synced length: after the cut it fails in either mode.
    if (!state_->PowerOnForWrite()) return PowerIsOff("Truncate", path_);
    IOStatus s = FSWritableFileOwnerWrapper::Truncate(size, options, dbg);
    if (s.ok()) {
      absl::MutexLock lock(&state_->mu);
      file_->written = size;
      file_->synced = std::min(file_->synced, size);
    }
    return s;
  }

  IOStatus Sync(const IOOptions& options, IODebugContext* dbg) override {
    return SyncWith("Sync", [&] { return FSWritableFileOwnerWrapper::Sync(options, dbg); });
  }

  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    return SyncWith("Fsync", [&] { return FSWritableFileOwnerWrapper::Fsync(options, dbg); });
  }

  // sync_file_range(2) promises nothing after a power cut, so it makes nothing durable here.
  IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const IOOptions& options,
                     IODebugContext* dbg) override {
    if (state_->ForWrite() == State::Verdict::kFails) return PowerIsOff("RangeSync", path_);
    return FSWritableFileOwnerWrapper::RangeSync(offset, nbytes, options, dbg);
  }

  IOStatus Allocate(uint64_t offset, uint64_t len, const IOOptions& options,
                    IODebugContext* dbg) override {
    if (state_->ForWrite() == State::Verdict::kFails) return PowerIsOff("Allocate", path_);
    return FSWritableFileOwnerWrapper::Allocate(offset, len, options, dbg);
  }

  // Closing works even without power (the store must be able to let go of its files), and it
  // makes nothing durable.
  IOStatus Close(const IOOptions& options, IODebugContext* dbg) override {
    IOStatus s = FSWritableFileOwnerWrapper::Close(options, dbg);
    MarkClosed();
    return s;
  }

 private:
  // Runs `write` of `n` bytes at `offset` (nullopt: at the end of the file) unless the power is
  // off under kFail, and tracks it. Bytes written after the cut (kNothingLasts) can never
  // survive it, not even as part of an unsynced tail that a power cut keeps.
  template <typename WriteFn>
  IOStatus TrackedWrite(const char* operation, std::optional<uint64_t> offset, uint64_t n,
                        WriteFn write) {
    const State::Verdict verdict = state_->ForWrite();
    if (verdict == State::Verdict::kFails) return PowerIsOff(operation, path_);
    IOStatus s = write();
    if (!s.ok()) return s;
    absl::MutexLock lock(&state_->mu);
    const uint64_t at = offset.value_or(file_->written);
    if (verdict == State::Verdict::kVanishes) file_->vanish_from = std::min(file_->vanish_from, at);
    file_->written = std::max(file_->written, at + n);
    return s;
  }

  // Runs `sync` and, if it succeeds, marks as synced every byte written before it started.
  // After the cut under kNothingLasts it succeeds without syncing anything.
  template <typename SyncFn>
  IOStatus SyncWith(const char* operation, SyncFn sync) {
    switch (state_->ForWrite()) {
      case State::Verdict::kFails:
        return PowerIsOff(operation, path_);
      case State::Verdict::kVanishes:
        return IOStatus::OK();
      case State::Verdict::kLasts:
        break;
    }
    uint64_t written;
    {
      absl::MutexLock lock(&state_->mu);
      written = file_->written;
    }
    IOStatus s = sync();
    if (s.ok()) {
      absl::MutexLock lock(&state_->mu);
      file_->synced = std::max(file_->synced, std::min(written, file_->written));
      ++state_->syncs;
    }
    return s;
  }

  void MarkClosed() {
    if (closed_.exchange(true)) return;
    absl::MutexLock lock(&state_->mu);
    --state_->open_writable_files;
  }

  const std::shared_ptr<State> state_;
  const std::shared_ptr<FileState> file_;
  const std::string path_;
  std::atomic<bool> closed_{false};
};

// A directory handle: forwards to the real one; an fsync makes the entries created before it
// started durable.
class FaultInjectionFileSystem::Directory final : public rocksdb::FSDirectoryWrapper {
 public:
  Directory(std::unique_ptr<rocksdb::FSDirectory> target, std::shared_ptr<State> state,
            std::string path)
      : FSDirectoryWrapper(std::move(target)), state_(std::move(state)), path_(std::move(path)) {}

  IOStatus Fsync(const IOOptions& options, IODebugContext* dbg) override {
    return FsyncWith([&] { return FSDirectoryWrapper::Fsync(options, dbg); });
  }

  // Whatever the reason given, the model treats this as a full directory fsync (as on ext4).
  IOStatus FsyncWithDirOptions(const IOOptions& options, IODebugContext* dbg,
                               const rocksdb::DirFsyncOptions& dir_fsync_options) override {
    return FsyncWith(
        [&] { return FSDirectoryWrapper::FsyncWithDirOptions(options, dbg, dir_fsync_options); });
  }

 private:
  template <typename FsyncFn>
  IOStatus FsyncWith(FsyncFn fsync) {
    switch (state_->ForWrite()) {
      case State::Verdict::kFails:
        return PowerIsOff("Fsync directory", path_);
      case State::Verdict::kVanishes:
        return IOStatus::OK();  // after the cut: nothing becomes durable
      case State::Verdict::kLasts:
        break;
    }
    std::vector<std::string> pending;
    {
      absl::MutexLock lock(&state_->mu);
      auto it = state_->undurable.find(path_);
      if (it != state_->undurable.end()) {
        for (const auto& entry : it->second) pending.push_back(entry.first);
      }
    }
    IOStatus s = fsync();
    if (s.ok()) {
      absl::MutexLock lock(&state_->mu);
      for (const std::string& name : pending) state_->ForgetEntry(JoinPath(path_, name));
      ++state_->dir_syncs;
    }
    return s;
  }

  const std::shared_ptr<State> state_;
  const std::string path_;
};

FaultInjectionFileSystem::FaultInjectionFileSystem(std::shared_ptr<rocksdb::FileSystem> base)
    : FileSystemWrapper(base), state_(std::make_shared<State>()) {}

FaultInjectionFileSystem::~FaultInjectionFileSystem() = default;

void FaultInjectionFileSystem::SetPowerOffWrites(PowerOffWrites mode) {
  state_->set_nothing_lasts(mode == PowerOffWrites::kNothingLasts);
}

void FaultInjectionFileSystem::SetActive(bool active) { state_->set_active(active); }

bool FaultInjectionFileSystem::IsActive() const { return state_->active(); }

void FaultInjectionFileSystem::CutPowerAfterWrites(uint64_t writes) { state_->ArmCut(writes); }

uint64_t FaultInjectionFileSystem::sync_count() const {
  absl::MutexLock lock(&state_->mu);
  return state_->syncs;
}

uint64_t FaultInjectionFileSystem::dir_sync_count() const {
  absl::MutexLock lock(&state_->mu);
  return state_->dir_syncs;
}

int64_t FaultInjectionFileSystem::SyncedSize(const std::string& path) const {
  absl::MutexLock lock(&state_->mu);
  auto it = state_->files.find(NormalizePath(path));
  return it == state_->files.end() ? -1 : static_cast<int64_t>(it->second->synced);
}

std::vector<std::string> FaultInjectionFileSystem::UndurableEntries(const std::string& dir) const {
  absl::MutexLock lock(&state_->mu);
  std::vector<std::string> names;
  auto it = state_->undurable.find(NormalizePath(dir));
  if (it != state_->undurable.end()) {
    for (const auto& entry : it->second) names.push_back(entry.first);
  }
  return names;
}

absl::Status FaultInjectionFileSystem::SimulatePowerCut(UnsyncedData unsynced, uint64_t seed) {
  absl::MutexLock lock(&state_->mu);
  if (state_->open_writable_files > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("SimulatePowerCut: ", state_->open_writable_files,
                     " file(s) still open for writing; close the store first"));
  }
  const IOOptions io;
  // Directory entries that never became durable: gone, or back to their durable contents.
  for (const auto& [dir, names] : state_->undurable) {
    for (const auto& [name, previous] : names) {
      const std::string path = JoinPath(dir, name);
      state_->files.erase(path);
      IOStatus s;
      if (previous.has_value()) {
        s = rocksdb::WriteStringToFile(target(), *previous, path, /*should_sync=*/true);
      } else if (target()->FileExists(path, io, nullptr).ok()) {
        s = target()->DeleteFile(path, io, nullptr);
      }
      if (!s.ok()) {
        return absl::InternalError(
            absl::StrCat("SimulatePowerCut: cannot undo entry ", path, ": ", s.ToString()));
      }
    }
  }
  // Bytes written but not synced: dropped, or some prefix of them kept.
  std::mt19937_64 rng(seed);
  for (const auto& [path, file] : state_->files) {
    if (!target()->FileExists(path, io, nullptr).ok()) continue;
    uint64_t keep = file->synced;
    if (unsynced == UnsyncedData::kKeepRandomPrefix && file->written > file->synced) {
      const uint64_t unsynced_bytes = file->written - file->synced;
      switch (rng() % 3) {
        case 0:
          break;  // none
        case 1:
          keep += unsynced_bytes;
          break;
        default:
          keep += std::uniform_int_distribution<uint64_t>(0, unsynced_bytes)(rng);
      }
    }
    keep = std::min(keep, file->vanish_from);
    uint64_t size = 0;
    IOStatus s = target()->GetFileSize(path, io, &size, nullptr);
    if (s.ok() && keep < size) s = TruncateFile(target(), path, keep);
    if (!s.ok()) {
      return absl::InternalError(
          absl::StrCat("SimulatePowerCut: cannot truncate ", path, ": ", s.ToString()));
    }
  }
  state_->files.clear();
  state_->undurable.clear();
  return absl::OkStatus();
}

IOStatus FaultInjectionFileSystem::NewWritableFile(const std::string& fname,
                                                   const rocksdb::FileOptions& opts,
                                                   std::unique_ptr<rocksdb::FSWritableFile>* result,
                                                   IODebugContext* dbg) {
  const State::Verdict verdict = state_->ForWrite();
  if (verdict == State::Verdict::kFails) return PowerIsOff("NewWritableFile", fname);
  const std::string path = NormalizePath(fname);
  const bool existed = target()->FileExists(fname, opts.io_options, nullptr).ok();
  // After the cut a new file is an undurable entry, but emptying an existing one could not be
  // undone.
  if (existed && verdict == State::Verdict::kVanishes) {
    return PowerIsOff("NewWritableFile over an existing file", fname);
  }
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->NewWritableFile(fname, opts, &file, dbg);
  if (!s.ok()) return s;
  auto file_state = std::make_shared<FileState>();  // truncated: nothing written or synced
  {
    absl::MutexLock lock(&state_->mu);
    state_->files[path] = file_state;
    if (!existed) state_->MarkUndurable(path, std::nullopt);
    ++state_->open_writable_files;
  }
  *result = std::make_unique<WritableFile>(std::move(file), state_, file_state, path);
  return s;
}

IOStatus FaultInjectionFileSystem::ReopenWritableFile(
    const std::string& fname, const rocksdb::FileOptions& opts,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  if (state_->ForWrite() == State::Verdict::kFails) {
    return PowerIsOff("ReopenWritableFile", fname);
  }
  const std::string path = NormalizePath(fname);
  const bool existed = target()->FileExists(fname, opts.io_options, nullptr).ok();
  std::unique_ptr<rocksdb::FSWritableFile> file;
  IOStatus s = target()->ReopenWritableFile(fname, opts, &file, dbg);
  if (!s.ok()) return s;
  uint64_t size = 0;
  if (existed) target()->GetFileSize(fname, opts.io_options, &size, nullptr).PermitUncheckedError();
  std::shared_ptr<FileState> file_state;
  {
    absl::MutexLock lock(&state_->mu);
    std::shared_ptr<FileState>& tracked = state_->files[path];
    if (tracked == nullptr) {
      // Written before tracking began (or before the last power cut): durable as it is.
      tracked = std::make_shared<FileState>(FileState{.written = size, .synced = size});
    } else {
      tracked->written = size;
      tracked->synced = std::min(tracked->synced, size);
    }
    file_state = tracked;
    if (!existed) state_->MarkUndurable(path, std::nullopt);
    ++state_->open_writable_files;
  }
  *result = std::make_unique<WritableFile>(std::move(file), state_, file_state, path);
  return s;
}

IOStatus FaultInjectionFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname, const rocksdb::FileOptions& opts,
    std::unique_ptr<rocksdb::FSWritableFile>* result, IODebugContext* dbg) {
  if (!state_->PowerOnForWrite()) return PowerIsOff("ReuseWritableFile", fname);
  // Reuse is a rename followed by overwriting from offset 0; model it as exactly that.
  IOStatus s = RenameFile(old_fname, fname, opts.io_options, dbg);
  if (!s.ok()) return s;
  const std::string path = NormalizePath(fname);
  std::unique_ptr<rocksdb::FSWritableFile> file;
  s = target()->ReuseWritableFile(fname, fname, opts, &file, dbg);
  if (!s.ok()) return s;
  auto file_state = std::make_shared<FileState>();  // old bytes beyond the writes count as lost
  {
    absl::MutexLock lock(&state_->mu);
    state_->files[path] = file_state;
    ++state_->open_writable_files;
  }
  *result = std::make_unique<WritableFile>(std::move(file), state_, file_state, path);
  return s;
}

IOStatus FaultInjectionFileSystem::NewRandomRWFile(const std::string& fname,
                                                   const rocksdb::FileOptions& opts,
                                                   std::unique_ptr<rocksdb::FSRandomRWFile>* result,
                                                   IODebugContext* dbg) {
  if (!state_->PowerOnForWrite()) return PowerIsOff("NewRandomRWFile", fname);
  return target()->NewRandomRWFile(fname, opts, result, dbg);
}

IOStatus FaultInjectionFileSystem::NewDirectory(const std::string& name, const IOOptions& io_opts,
                                                std::unique_ptr<rocksdb::FSDirectory>* result,
                                                IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  IOStatus s = target()->NewDirectory(name, io_opts, &dir, dbg);
  if (!s.ok()) return s;
  *result = std::make_unique<Directory>(std::move(dir), state_, NormalizePath(name));
  return s;
}

IOStatus FaultInjectionFileSystem::DeleteFile(const std::string& fname, const IOOptions& options,
                                              IODebugContext* dbg) {
  if (!state_->PowerOnForWrite()) return PowerIsOff("DeleteFile", fname);
  IOStatus s = target()->DeleteFile(fname, options, dbg);
  if (s.ok()) {
    const std::string path = NormalizePath(fname);
    absl::MutexLock lock(&state_->mu);
    state_->files.erase(path);
    state_->ForgetEntry(path);
  }
  return s;
}

IOStatus FaultInjectionFileSystem::Truncate(const std::string& fname, size_t size,
                                            const IOOptions& options, IODebugContext* dbg) {
  if (!state_->PowerOnForWrite()) return PowerIsOff("Truncate", fname);
  IOStatus s = target()->Truncate(fname, size, options, dbg);
  if (s.ok()) {
    absl::MutexLock lock(&state_->mu);
    auto it = state_->files.find(NormalizePath(fname));
    if (it != state_->files.end()) {
      it->second->written = size;
      it->second->synced = std::min<uint64_t>(it->second->synced, size);
    }
  }
  return s;
}

IOStatus FaultInjectionFileSystem::CreateDir(const std::string& dirname, const IOOptions& options,
                                             IODebugContext* dbg) {
  if (!state_->PowerOnForWrite()) return PowerIsOff("CreateDir", dirname);
  return target()->CreateDir(dirname, options, dbg);
}

IOStatus FaultInjectionFileSystem::CreateDirIfMissing(const std::string& dirname,
                                                      const IOOptions& options,
                                                      IODebugContext* dbg) {
  if (!state_->PowerOnForWrite()) return PowerIsOff("CreateDirIfMissing", dirname);
  return target()->CreateDirIfMissing(dirname, options, dbg);
}

IOStatus FaultInjectionFileSystem::DeleteDir(const std::string& dirname, const IOOptions& options,
                                             IODebugContext* dbg) {
  if (!state_->PowerOnForWrite()) return PowerIsOff("DeleteDir", dirname);
  return target()->DeleteDir(dirname, options, dbg);
}

IOStatus FaultInjectionFileSystem::RenameFile(const std::string& src, const std::string& dest,
                                              const IOOptions& options, IODebugContext* dbg) {
  if (!state_->PowerOnForWrite()) return PowerIsOff("RenameFile", src);
  const std::string src_path = NormalizePath(src);
  const std::string dest_path = NormalizePath(dest);
  bool src_undurable;
  bool dest_undurable;
  {
    absl::MutexLock lock(&state_->mu);
    src_undurable = state_->IsUndurable(src_path);
    dest_undurable = state_->IsUndurable(dest_path);
  }
  // A new file renamed over a durable one (RocksDB's CURRENT): until the directory is synced,
  // a power cut leaves the old file, as far as it was synced.
  std::optional<std::string> previous;
  if (src_undurable && !dest_undurable && target()->FileExists(dest, options, nullptr).ok()) {
    std::string contents;
    IOStatus s = rocksdb::ReadFileToString(target(), dest, &contents);
    if (!s.ok()) return s;
    absl::MutexLock lock(&state_->mu);
    auto it = state_->files.find(dest_path);
    if (it != state_->files.end() && it->second->synced < contents.size()) {
      contents.resize(it->second->synced);
    }
    previous = std::move(contents);
  }
  IOStatus s = target()->RenameFile(src, dest, options, dbg);
  if (!s.ok()) return s;
  absl::MutexLock lock(&state_->mu);
  auto it = state_->files.find(src_path);
  if (it != state_->files.end()) {
    state_->files[dest_path] = it->second;
    state_->files.erase(it);
  } else {
    state_->files.erase(dest_path);
  }
  if (src_undurable) {
    state_->ForgetEntry(src_path);
    state_->MarkUndurable(dest_path, std::move(previous));
  } else {
    // Renaming a durable file is treated as durable at once (see the header).
    state_->ForgetEntry(dest_path);
  }
  return s;
}

IOStatus FaultInjectionFileSystem::LinkFile(const std::string& src, const std::string& dest,
                                            const IOOptions& options, IODebugContext* dbg) {
  if (!state_->PowerOnForWrite()) return PowerIsOff("LinkFile", src);
  IOStatus s = target()->LinkFile(src, dest, options, dbg);
  if (!s.ok()) return s;
  const std::string dest_path = NormalizePath(dest);
  absl::MutexLock lock(&state_->mu);
  auto it = state_->files.find(NormalizePath(src));
  if (it != state_->files.end()) state_->files[dest_path] = it->second;  // one inode
  state_->MarkUndurable(dest_path, std::nullopt);
  return s;
}

std::unique_ptr<rocksdb::Env> NewFaultInjectionEnv(
    const std::shared_ptr<FaultInjectionFileSystem>& fs) {
  return rocksdb::NewCompositeEnv(fs);
}

}  // namespace evlog::storage
