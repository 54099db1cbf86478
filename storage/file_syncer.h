// FileSyncer: fsyncs segment data files on a thread of its own, so that the writer thread's
// RocksDB write (and its write-ahead log fsync) runs at the same time instead of after them.
// Under FsyncPolicy::kAlways each write group needs both fsyncs before it is acknowledged;
// overlapping them takes one fsync off every acknowledgement's latency.
#pragma once

#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "storage/segment_file.h"

namespace evlog::storage {

class FileSyncer {
 public:
  FileSyncer();   // starts the thread
  ~FileSyncer();  // stops it (after the job in progress, if any)
  FileSyncer(const FileSyncer&) = delete;
  FileSyncer& operator=(const FileSyncer&) = delete;

  // Starts SegmentFile::Sync of each of `files`, one after the other, on the syncer's thread.
  // The caller (one thread: the store's writer) must not touch the files, nor call Start
  // again, until Wait returns. `files` must stay alive until then.
  void Start(std::vector<SegmentFile*> files);

  // Waits for the job Start began; returns the first failure (the files after it are not
  // synced) or OK when every file is durable.
  absl::Status Wait();

 private:
  void Loop();

  absl::Mutex mu_;
  std::vector<SegmentFile*> files_ ABSL_GUARDED_BY(mu_);
  bool pending_ ABSL_GUARDED_BY(mu_) = false;  // a job was started and is not finished
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status result_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace evlog::storage
