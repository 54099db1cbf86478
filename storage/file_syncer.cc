// FileSyncer: see file_syncer.h.
#include "storage/file_syncer.h"

#include <utility>

namespace evlog::storage {

FileSyncer::FileSyncer() : thread_([this] { Loop(); }) {}

FileSyncer::~FileSyncer() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void FileSyncer::Start(std::vector<SegmentFile*> files) {
  absl::MutexLock l(&mu_);
  files_ = std::move(files);
  result_ = absl::OkStatus();
  pending_ = !files_.empty();
}

absl::Status FileSyncer::Wait() {
  absl::MutexLock l(&mu_);
  auto done = [](FileSyncer* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return !s->pending_; };
  mu_.Await(absl::Condition(+done, this));
  return result_;
}

void FileSyncer::Loop() {
  for (;;) {
    std::vector<SegmentFile*> files;
    {
      absl::MutexLock l(&mu_);
      auto ready = [](FileSyncer* s) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return s->stop_ || (s->pending_ && !s->files_.empty());
      };
      mu_.Await(absl::Condition(+ready, this));
      if (stop_) return;
      files.swap(files_);
    }
    absl::Status status;
    for (SegmentFile* file : files) {
      status = file->Sync();
      if (!status.ok()) break;
    }
    absl::MutexLock l(&mu_);
    result_ = std::move(status);
    pending_ = false;
  }
}

}  // namespace evlog::storage
