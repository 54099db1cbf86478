// FileSyncer: fsyncs segment data files on threads of its own, so that the writer thread's
// RocksDB write (and its write-ahead log fsync) runs at the same time instead of after them,
// and so that a group touching several data files waits for the slowest fsync, not their sum.
// Under FsyncPolicy::kAlways each write group needs all of these fsyncs before it is
// acknowledged. A group touches one data file per active segment it writes to: during a flood
// into one topic, a quiet topic's append shares a group with the flood, and fsyncing the two
// files one after the other made the quiet topic's appends pay an extra fsync that the flood's
// own groups did not.
#pragma once

#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "storage/segment_file.h"

namespace evlog::storage {

class FileSyncer {
 public:
  // The number of syncing threads a store uses: enough for the files of a few busy topics at
  // once; a group with more files has them synced a few at a time.
  static constexpr int kDefaultThreads = 4;

  // Starts `threads` syncing threads (at least one).
  explicit FileSyncer(int threads = kDefaultThreads);
  ~FileSyncer();  // stops the threads (after the fsyncs in progress, if any)
  FileSyncer(const FileSyncer&) = delete;
  FileSyncer& operator=(const FileSyncer&) = delete;

  // Starts SegmentFile::Sync of each of `files` (distinct files): file i on thread
  // i % threads, so that a one-file job (the common case) wakes one thread only. The caller (one
  // thread: the store's writer) must not touch the files, nor call Start again, until Wait returns.
  // `files` must stay alive until then.
  void Start(std::vector<SegmentFile*> files);

  // Waits until every file of the job Start began has been synced or has failed; returns the
  // first failure (the other files may or may not be durable) or OK when every file is.
  absl::Status Wait();

 private:
  // One syncing thread's share of the job in progress.
  struct Worker {
    FileSyncer* owner;
    std::vector<SegmentFile*> files;  // guarded by owner->mu_; taken whole by the thread
  };

  void Loop(Worker* worker);

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Worker>> workers_;  // fixed at construction
  size_t unfinished_ ABSL_GUARDED_BY(mu_) = 0;    // files of the job not yet synced or failed
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status result_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

}  // namespace evlog::storage
