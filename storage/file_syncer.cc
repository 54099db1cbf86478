// FileSyncer: see file_syncer.h.
#include "storage/file_syncer.h"

#include <algorithm>
#include <utility>

namespace evlog::storage {

FileSyncer::FileSyncer(int threads) {
  for (int i = 0; i < std::max(threads, 1); ++i) {
    workers_.push_back(std::make_unique<Worker>(Worker{this, {}}));
  }
  for (const std::unique_ptr<Worker>& worker : workers_) {
    threads_.emplace_back([this, w = worker.get()] { Loop(w); });
  }
}

FileSyncer::~FileSyncer() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  for (std::thread& thread : threads_) thread.join();
}

void FileSyncer::Start(std::vector<SegmentFile*> files) {
  absl::MutexLock l(&mu_);
  for (size_t i = 0; i < files.size(); ++i) {
    workers_[i % workers_.size()]->files.push_back(files[i]);
  }
  unfinished_ = files.size();
  result_ = absl::OkStatus();
}

absl::Status FileSyncer::Wait() {
  absl::MutexLock l(&mu_);
  auto done = [](FileSyncer* s) ABSL_NO_THREAD_SAFETY_ANALYSIS { return s->unfinished_ == 0; };
  mu_.Await(absl::Condition(+done, this));
  return result_;
}

void FileSyncer::Loop(Worker* worker) {
  for (;;) {
    std::vector<SegmentFile*> files;
    {
      absl::MutexLock l(&mu_);
      auto ready = [](Worker* w) ABSL_NO_THREAD_SAFETY_ANALYSIS {
        return w->owner->stop_ || !w->files.empty();
      };
      mu_.Await(absl::Condition(+ready, worker));
      if (stop_) return;
      files.swap(worker->files);
    }
    absl::Status status;
    for (SegmentFile* file : files) {
      if (absl::Status s = file->Sync(); !s.ok() && status.ok()) status = std::move(s);
    }
    absl::MutexLock l(&mu_);
    if (!status.ok() && result_.ok()) result_ = std::move(status);
    unfinished_ -= files.size();
  }
}

}  // namespace evlog::storage
