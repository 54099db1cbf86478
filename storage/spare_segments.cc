// Spare segments: a topic's next segment, made ahead on a background thread.
//
// Creating a segment costs 5-10 ms (measured in the burst test: RocksDB writes and fsyncs its
// manifest and an options file for the new column family, and the data file is created and
// fsynced with its directory). A roll did it on the writer thread, where every topic's appends
// waited for it, about every 0.6 s under a 350 MiB/s flood with 256 MiB segments. Now the
// writer asks for the next segment when the active one is half full, and the roll only takes it.
// (RocksDB still holds back other writes while it records the column family in its manifest,
// so part of the cost can still delay the writer's next write.)
//
// Crash safety: a spare is a column family and a file, but no segment record (meta
// SegmentRecordKey): the roll writes that record in the same RocksDB write as the first batch
// locations it puts in the segment. So at open, an empty segment with neither a record nor a
// durable-length key is a spare that no roll took, and is dropped (LoadMetadata); its file goes
// as an orphan.
#include <memory>
#include <utility>

#include "spdlog/spdlog.h"
#include "storage/log_store_impl.h"

namespace evlog::storage {

void LogStoreImpl::RequestSpare(const std::shared_ptr<TopicState>& topic) {
  {
    absl::MutexLock l(&topic->mu);
    if (topic->deleted || topic->spare != nullptr || topic->spare_requested) return;
    topic->spare_requested = true;
  }
  absl::MutexLock l(&threads_mu_);
  spare_requests_.push_back(topic);
}

std::shared_ptr<Segment> LogStoreImpl::TakeSpare(TopicState* topic) {
  absl::MutexLock l(&topic->mu);
  topic->spare_requested = false;
  return std::exchange(topic->spare, nullptr);
}

absl::StatusOr<std::shared_ptr<Segment>> LogStoreImpl::NextSegment(TopicState* topic, uint64_t seq,
                                                                   int64_t created_ms) {
  // Waits for this topic's spare if it is being made right now: it is then ready, and making
  // another would collide. Other topics' spares do not hold it up.
  absl::MutexLock create(&topic->create_mu);
  std::shared_ptr<Segment> spare = TakeSpare(topic);
  if (spare != nullptr && spare->seq == seq) {
    spare->created_ms = created_ms;
    ++stat_spares_used_;
    return spare;
  }
  // Not made for this roll (cannot happen while only rolls change the active segment): drop it.
  if (spare != nullptr) DropSegment(*spare);
  return CreateSegment(topic->id, seq, created_ms);
}

void LogStoreImpl::SparePreparerLoop() {
  for (;;) {
    std::shared_ptr<TopicState> topic;
    {
      absl::MutexLock l(&threads_mu_);
      threads_mu_.Await(absl::Condition(this, &LogStoreImpl::SpareWorkOrStop));
      if (threads_stop_) return;
      topic = std::move(spare_requests_.front());
      spare_requests_.pop_front();
    }
    absl::MutexLock create(&topic->create_mu);
    uint64_t seq = 0;
    {
      absl::MutexLock l(&topic->mu);
      // Requested, then taken or given up by a roll or a deletion meanwhile: nothing to do.
      if (topic->deleted || topic->closed || !topic->spare_requested || topic->spare != nullptr) {
        topic->spare_requested = false;
        continue;
      }
      seq = topic->segments.rbegin()->first + 1;
    }
    absl::StatusOr<std::shared_ptr<Segment>> segment = CreateSegment(topic->id, seq, NowMs());
    if (!segment.ok()) {
      // The roll will try again, on the writer thread, and report what fails there.
      spdlog::warn("preparing segment {} of topic '{}' ahead: {}", seq, topic->name,
                   segment.status().ToString());
      absl::MutexLock l(&topic->mu);
      topic->spare_requested = false;
      continue;
    }
    bool kept = false;
    {
      absl::MutexLock l(&topic->mu);
      if (!topic->deleted && !topic->closed && topic->spare_requested &&
          topic->segments.rbegin()->first + 1 == seq) {
        topic->spare = *segment;
        kept = true;
      }
      topic->spare_requested = false;
    }
    if (kept) {
      ++stat_spares_made_;
    } else {
      DropSegment(**segment);
    }
  }
}

}  // namespace evlog::storage
