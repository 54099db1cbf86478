#include "client/consumer.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <thread>
#include <utility>

#include <grpcpp/client_context.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/backoff.h"
#include "client/channel.h"
#include "client/consumer_internal.h"
#include "client/grpc_status.h"
#include "evlog/v1/groups.grpc.pb.h"

namespace evlog::client {
namespace {

namespace v1 = evlog::v1;
using consumer_internal::AssignmentDiff;
using consumer_internal::CommitBatch;
using consumer_internal::PendingCommit;

// Failures after which the same call may simply be sent again.
bool IsTransient(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsResourceExhausted(s) ||
         absl::IsAborted(s) || absl::IsCancelled(s);
}

std::string DefaultClientId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "consumer", ":", getpid());
}

// A Join or Heartbeat answer.
struct View {
  std::string member_id;  // set by Join only
  int64_t generation = 0;
  std::vector<AssignedPartition> assignment;
};

template <typename Response>
View ViewFrom(const Response& response) {
  View view;
  view.generation = response.generation();
  for (const v1::PartitionAssignment& a : response.assignment()) {
    view.assignment.push_back({.tp = {a.topic(), a.partition()},
                               .start_offset = a.start_offset(),
                               .committed = a.committed(),
                               .trimmed = a.trimmed(),
                               .assigned_generation = a.assigned_generation()});
  }
  return view;
}

class ConsumerImpl final : public Consumer {
 public:
  ConsumerImpl(std::shared_ptr<grpc::Channel> channel, ConsumerOptions options)
      : options_(std::move(options)),
        client_id_(options_.client_id.empty() ? DefaultClientId() : options_.client_id),
        channel_(std::move(channel)),
        stub_(v1::GroupService::NewStub(channel_)),
        reader_(Reader::Create(channel_, options_.reader)) {}

  ~ConsumerImpl() override { Close().IgnoreError(); }

  // The first join; then the heartbeat thread takes over.
  absl::Status Start() {
    absl::StatusOr<View> view = CallJoin();
    if (!view.ok()) return view.status();
    ApplyView(*view, 0);
    heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<ConsumedRecord>> Poll(size_t max_records,
                                                   absl::Time deadline) override {
    if (max_records < 1) return absl::InvalidArgumentError("Poll needs max_records >= 1");
    {
      absl::MutexLock l(&mu_);
      if (closed_ || closing_) return absl::FailedPreconditionError("the consumer is closed");
      if (!failed_.ok()) return failed_;
    }
    if (options_.auto_commit) {
      const absl::Time now = absl::Now();
      if (now - last_auto_commit_ >= options_.auto_commit_interval) {
        last_auto_commit_ = now;
        // Not fatal here: unreachable -> retried at the next Poll (positions stay pending);
        // lost partitions -> dropped, their records go to the new owner.
        CommitPending(now + options_.call_timeout).IgnoreError();
      }
    }
    absl::MutexLock l(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      if (!failed_.ok() || closing_) return true;
      for (const auto& [tp, s] : partitions_) {
        if (!s->buffer.empty()) return true;
      }
      return false;
    };
    mu_.AwaitWithDeadline(absl::Condition(&ready), deadline);
    if (!failed_.ok()) return failed_;
    std::vector<consumer_internal::RecordQueue*> queues;
    for (auto& [tp, s] : partitions_) queues.push_back(&s->buffer);
    std::vector<ConsumedRecord> records =
        consumer_internal::TakeFairly(queues, next_queue_++, max_records);
    // Records come in runs per partition (TakeFairly takes several from a queue at a time), so
    // the partition is looked up once per run, not once per record.
    PartitionState* state = nullptr;
    for (const ConsumedRecord& r : records) {
      if (state == nullptr || state->tp.partition != r.partition || state->tp.topic != r.topic) {
        auto it = partitions_.find(TopicPartition{r.topic, r.partition});
        if (it == partitions_.end()) continue;  // cannot happen: taken from its queue
        state = it->second.get();
      }
      state->handed = r.offset + 1;
      state->buffered_bytes -= consumer_internal::RecordBytes(r);
      // Handed out only what was fetched; committed positions are handed ones.
      assert(state->handed <= state->fetched);
    }
    stats_.records_delivered += static_cast<int64_t>(records.size());
    return records;
  }

  absl::Status Commit() override {
    {
      absl::MutexLock l(&mu_);
      if (closed_ || closing_) return absl::FailedPreconditionError("the consumer is closed");
    }
    return CommitPending(absl::Now() + options_.call_timeout);
  }

  absl::Status Close() override {
    {
      absl::MutexLock l(&mu_);
      if (closed_ || closing_) return absl::OkStatus();
      closing_ = true;
      if (inflight_ != nullptr) inflight_->TryCancel();
    }
    if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
    // Also reader threads of partitions added by a view applied before closing_ was seen.
    // The heartbeat thread is gone, so partitions_ changes no more.
    std::vector<std::thread*> threads;
    {
      absl::MutexLock l(&mu_);
      for (auto& [tp, s] : partitions_) {
        StopLocked(*s);
        threads.push_back(&s->thread);
      }
    }
    for (std::thread* t : threads) {
      if (t->joinable()) t->join();
    }
    absl::Status status;
    if (options_.auto_commit) status = CommitPending(absl::Now() + options_.call_timeout);
    std::string member;
    {
      absl::MutexLock l(&mu_);
      member = member_id_;
    }
    if (!member.empty()) {
      absl::Status left = CallLeave(member);
      if (status.ok() && !left.ok() && !absl::IsFailedPrecondition(left)) status = left;
    }
    absl::MutexLock l(&mu_);
    partitions_.clear();
    member_id_.clear();
    closed_ = true;
    return status;
  }

  std::vector<TopicPartition> Assignment() override {
    absl::MutexLock l(&mu_);
    std::vector<TopicPartition> out;
    for (const auto& [tp, s] : partitions_) out.push_back(tp);
    return out;
  }

  std::string member_id() override {
    absl::MutexLock l(&mu_);
    return member_id_;
  }

  int64_t generation() override {
    absl::MutexLock l(&mu_);
    return generation_;
  }

  std::map<TopicPartition, int64_t> CommittedOffsets() override {
    absl::MutexLock l(&mu_);
    return committed_offsets_;
  }

  ConsumerStats Stats() override {
    absl::MutexLock l(&mu_);
    return stats_;
  }

 private:
  // One assigned partition: its positions, read-ahead buffer and reader thread.
  struct PartitionState {
    TopicPartition tp;
    int64_t assigned_generation = 0;
    // Offset invariant: committed <= handed <= fetched. `committed` is the group's committed
    // offset as this member knows it (the start offset until it commits); `handed` is one
    // past the last record Poll returned; `fetched` is the next offset to read.
    int64_t committed = 0;
    int64_t handed = 0;
    int64_t fetched = 0;
    consumer_internal::RecordQueue buffer;  // fetched, not handed out
    int64_t buffered_bytes = 0;
    bool stopping = false;
    ReadStream* stream = nullptr;  // the open stream, for Cancel
    std::thread thread;            // runs FetchLoop; joined before the state is destroyed
  };

  // A revoked partition's handed-out position, to be committed if the server still allows.
  struct RevokedPosition {
    std::string member_id;
    int64_t generation = 0;  // the last generation in which this member owned it
    int64_t offset = 0;
  };

  // --- Calls (each with a deadline; the in-flight join/heartbeat is cancelled by Close). ---

  absl::StatusOr<View> CallJoin() {
    v1::JoinGroupRequest request;
    request.set_group(options_.group);
    request.set_client_id(client_id_);
    for (const std::string& t : options_.topics) request.add_topics(t);
    request.set_session_timeout_ms(
        static_cast<int32_t>(absl::ToInt64Milliseconds(options_.session_timeout)));
    request.set_auto_offset_reset(options_.auto_offset_reset == OffsetReset::kLatest
                                      ? v1::AUTO_OFFSET_RESET_LATEST
                                      : v1::AUTO_OFFSET_RESET_EARLIEST);
    v1::JoinGroupResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.call_timeout);
    if (!BeginCall(&context)) return absl::CancelledError("the consumer is closing");
    grpc::Status status = stub_->JoinGroup(&context, request, &response);
    EndCall();
    absl::Status s = FromGrpcStatus(status, &context);
    if (!s.ok()) return s;
    View view = ViewFrom(response);
    view.member_id = response.member_id();
    return view;
  }

  absl::StatusOr<View> CallHeartbeat(const std::string& member) {
    v1::HeartbeatRequest request;
    request.set_group(options_.group);
    request.set_member_id(member);
    v1::HeartbeatResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, std::min(options_.call_timeout, options_.session_timeout));
    if (!BeginCall(&context)) return absl::CancelledError("the consumer is closing");
    grpc::Status status = stub_->Heartbeat(&context, request, &response);
    EndCall();
    absl::Status s = FromGrpcStatus(status, &context);
    if (!s.ok()) return s;
    return ViewFrom(response);
  }

  absl::Status CallLeave(const std::string& member) {
    v1::LeaveGroupRequest request;
    request.set_group(options_.group);
    request.set_member_id(member);
    v1::LeaveGroupResponse response;
    grpc::ClientContext context;
    SetTimeout(&context, options_.call_timeout);
    return FromGrpcStatus(stub_->LeaveGroup(&context, request, &response), &context);
  }

  // One CommitOffsets call, resent after UNAVAILABLE / RESOURCE_EXHAUSTED until `deadline`
  // (a commit sets offsets, so sending it twice is harmless).
  absl::Status CallCommit(const CommitBatch& batch, absl::Time deadline) {
    v1::CommitOffsetsRequest request;
    request.set_group(options_.group);
    request.set_member_id(batch.member_id);
    request.set_generation(batch.generation);
    request.set_topic(batch.topic);
    for (const auto& [partition, offset] : batch.offsets) {
      v1::PartitionOffsetCommit* c = request.add_offsets();
      c->set_partition(partition);
      c->set_offset(offset);
    }
    Backoff backoff({.initial = absl::Milliseconds(20), .max = absl::Seconds(1)});
    while (true) {
      v1::CommitOffsetsResponse response;
      grpc::ClientContext context;
      SetDeadline(&context, std::min(deadline, absl::Now() + options_.call_timeout));
      absl::Status s = FromGrpcStatus(stub_->CommitOffsets(&context, request, &response), &context);
      if (s.ok() || !IsRetriable(s) || absl::Now() + backoff.Peek() >= deadline) return s;
      absl::SleepFor(backoff.NextDelay(s));
    }
  }

  // Registers the heartbeat thread's (or Start's) call so Close can cancel it. False if the
  // consumer is closing.
  bool BeginCall(grpc::ClientContext* context) {
    absl::MutexLock l(&mu_);
    if (closing_) return false;
    inflight_ = context;
    return true;
  }
  void EndCall() {
    absl::MutexLock l(&mu_);
    inflight_ = nullptr;
  }

  // --- Membership. ---

  void HeartbeatLoop() {
    const absl::Duration interval = consumer_internal::HeartbeatInterval(options_);
    Backoff backoff({.initial = std::min(absl::Milliseconds(100), interval), .max = interval});
    absl::Time next = absl::Now() + interval;
    absl::Time last_success = absl::Now();
    absl::Time failing_since = absl::InfiniteFuture();
    while (true) {
      std::string member;
      uint64_t seq = 0;
      {
        absl::MutexLock l(&mu_);
        auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return closing_ || heartbeat_requested_;
        };
        mu_.AwaitWithDeadline(absl::Condition(&wake), next);
        if (closing_) return;
        heartbeat_requested_ = false;
        member = member_id_;
        seq = ++heartbeats_started_;
      }
      const absl::Time started = absl::Now();
      absl::Status status;
      if (member.empty()) {
        absl::StatusOr<View> view = CallJoin();
        status = view.status();
        if (view.ok()) {
          ApplyView(*view, seq);
        } else if (!IsTransient(status)) {
          Fail(absl::Status(status.code(), absl::StrCat("cannot join group ", options_.group,
                                                        " again: ", status.message())));
          return;
        }
      } else {
        absl::StatusOr<View> view = CallHeartbeat(member);
        status = view.status();
        if (view.ok()) {
          ApplyView(*view, seq);
        } else if (absl::IsFailedPrecondition(status)) {
          // Unknown member: expired, or removed by a forced reset. Join again at once.
          LoseMembership();
          next = absl::Now();
          continue;
        }
      }
      if (status.ok()) {
        last_success = started;
        failing_since = absl::InfiniteFuture();
        backoff.Reset();
        next = started + interval;
        continue;
      }
      {
        absl::MutexLock l(&mu_);
        if (closing_) return;
      }
      if (failing_since == absl::InfiniteFuture()) failing_since = started;
      if (absl::Now() - failing_since >= options_.give_up_after) {
        Fail(absl::Status(status.code(),
                          absl::StrCat("no answer to heartbeats of group ", options_.group, " for ",
                                       absl::FormatDuration(absl::Now() - failing_since), ": ",
                                       status.message())));
        return;
      }
      // Past the session timeout the server has dropped this member and given its partitions
      // to others: stop reading them now instead of delivering what others deliver.
      if (!member.empty() && absl::Now() - last_success > options_.session_timeout) {
        LoseMembership();
      }
      next = absl::Now() + std::min(interval, backoff.NextDelay(status));
    }
  }

  // Applies a Join/Heartbeat answer: stops revoked partitions, starts new ones. `seq`: the
  // number of the heartbeat call that brought it (0 for the first join).
  void ApplyView(const View& view, uint64_t seq) {
    std::vector<std::unique_ptr<PartitionState>> retired;
    AssignmentChange change;
    bool changed = false;
    {
      absl::MutexLock l(&mu_);
      if (closing_) {
        // Start nothing; but remember a new membership so that Close leaves it.
        if (!view.member_id.empty()) member_id_ = view.member_id;
        return;
      }
      std::map<TopicPartition, int64_t> held;
      for (const auto& [tp, s] : partitions_) held[tp] = s->assigned_generation;
      const AssignmentDiff diff = consumer_internal::DiffAssignment(held, view.assignment);
      for (const TopicPartition& tp : diff.removed) {
        auto node = partitions_.extract(tp);
        std::unique_ptr<PartitionState> s = std::move(node.mapped());
        StopLocked(*s);
        if (s->handed > s->committed) revoked_[tp] = {member_id_, generation_, s->handed};
        retired.push_back(std::move(s));
      }
      if (!view.member_id.empty()) member_id_ = view.member_id;
      generation_ = view.generation;
      for (const AssignedPartition& a : diff.added) {
        revoked_.erase(a.tp);  // reassigned: the old position must not be committed
        auto s = std::make_unique<PartitionState>();
        s->tp = a.tp;
        s->assigned_generation = a.assigned_generation;
        s->committed = s->handed = s->fetched = a.start_offset;
        PartitionState* raw = s.get();
        partitions_[a.tp] = std::move(s);
        raw->thread = std::thread([this, raw] { FetchLoop(raw); });
      }
      last_applied_seq_ = seq;
      changed = !diff.added.empty() || !diff.removed.empty();
      if (changed) {
        ++stats_.rebalances;
        change.generation = generation_;
        change.member_id = member_id_;
        change.assigned = diff.added;
        change.revoked = diff.removed;
        for (const auto& [tp, s] : partitions_) change.assignment.push_back(tp);
      }
    }
    for (auto& s : retired) s->thread.join();
    if (changed && options_.on_assignment) options_.on_assignment(change);
  }

  // The server no longer knows this member: drop every partition (keeping handed-out
  // positions to try committing) and forget the member id, so the next round joins again.
  void LoseMembership() {
    std::vector<std::unique_ptr<PartitionState>> retired;
    AssignmentChange change;
    {
      absl::MutexLock l(&mu_);
      if (member_id_.empty() && partitions_.empty()) return;
      for (auto& [tp, s] : partitions_) {
        StopLocked(*s);
        if (s->handed > s->committed) revoked_[tp] = {member_id_, generation_, s->handed};
        change.revoked.push_back(tp);
        retired.push_back(std::move(s));
      }
      partitions_.clear();
      member_id_.clear();
      ++stats_.rejoins;
      change.generation = generation_;
      change.membership_lost = true;
    }
    for (auto& s : retired) s->thread.join();
    if (options_.on_assignment) options_.on_assignment(change);
  }

  void Fail(const absl::Status& status) {
    absl::MutexLock l(&mu_);
    if (failed_.ok()) failed_ = status;
  }

  // Asks the heartbeat thread for a heartbeat now and waits (until `deadline`) until the
  // answer of a heartbeat started after this call was applied. True if one was.
  bool RefreshAssignment(absl::Time deadline) {
    absl::MutexLock l(&mu_);
    if (closing_ || !failed_.ok()) return false;
    const uint64_t target = heartbeats_started_;
    heartbeat_requested_ = true;
    auto done = [this, target]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return last_applied_seq_ > target || closing_ || !failed_.ok();
    };
    mu_.AwaitWithDeadline(absl::Condition(&done), deadline);
    return last_applied_seq_ > target;
  }

  // --- Commits. ---

  absl::Status CommitPending(absl::Time deadline) {
    std::vector<TopicPartition> lost;
    absl::Status refused;    // FAILED_PRECONDITION for partitions we still appear to own
    absl::Status transient;  // the server could not be reached
    for (int attempt = 0; attempt < 2; ++attempt) {
      std::vector<PendingCommit> owned, revoked;
      std::map<TopicPartition, int64_t> epochs;
      {
        absl::MutexLock l(&mu_);
        for (const auto& [tp, s] : partitions_) {
          if (s->handed <= s->committed || member_id_.empty()) continue;
          owned.push_back({tp, member_id_, generation_, s->handed});
          epochs[tp] = s->assigned_generation;
        }
        for (const auto& [tp, r] : revoked_) {
          revoked.push_back({tp, r.member_id, r.generation, r.offset});
        }
      }
      if (owned.empty() && revoked.empty()) break;

      // Revoked partitions: any definite answer ends them.
      for (const CommitBatch& batch : consumer_internal::BatchCommits(revoked)) {
        absl::Status s = CallCommit(batch, deadline);
        absl::MutexLock l(&mu_);
        if (s.ok()) ++stats_.commits;
        if (!s.ok() && IsTransient(s)) transient = s;
        for (const auto& [partition, offset] : batch.offsets) {
          const TopicPartition tp{batch.topic, partition};
          auto it = revoked_.find(tp);
          if (it == revoked_.end() || it->second.member_id != batch.member_id ||
              it->second.generation != batch.generation || it->second.offset != offset) {
            continue;  // changed meanwhile
          }
          if (s.ok()) {
            committed_offsets_[tp] = offset;
            revoked_.erase(it);
          } else if (!IsTransient(s)) {
            lost.push_back(tp);
            ++stats_.partitions_lost;
            revoked_.erase(it);
          }
        }
      }

      bool refresh = false;
      refused = absl::OkStatus();
      for (const CommitBatch& batch : consumer_internal::BatchCommits(owned)) {
        absl::Status s = CallCommit(batch, deadline);
        if (s.ok()) {
          absl::MutexLock l(&mu_);
          ++stats_.commits;
          for (const auto& [partition, offset] : batch.offsets) {
            const TopicPartition tp{batch.topic, partition};
            committed_offsets_[tp] = offset;
            auto it = partitions_.find(tp);
            if (it != partitions_.end() && it->second->assigned_generation == epochs[tp]) {
              it->second->committed = std::max(it->second->committed, offset);
            }
          }
        } else if (absl::IsFailedPrecondition(s)) {
          // Some partition of this call is not ours any more (or the member is gone); the
          // call was all or nothing. Learn the assignment, then commit what is still ours.
          refresh = true;
          refused = s;
        } else if (IsTransient(s)) {
          transient = s;
        } else {
          refused = s;  // e.g. NOT_FOUND: the topic was deleted; the heartbeat drops it
        }
      }
      if (!refresh || attempt > 0 || !RefreshAssignment(deadline)) break;
    }
    if (!lost.empty()) {
      std::sort(lost.begin(), lost.end());
      return absl::FailedPreconditionError(absl::StrCat(
          "lost ", consumer_internal::FormatPartitions(lost), " of group ", options_.group,
          " to another member before committing; records after the group's committed offset "
          "there will be delivered again"));
    }
    if (!refused.ok()) return refused;
    return transient;
  }

  // --- Reading. ---

  void StopLocked(PartitionState& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    s.stopping = true;
    if (s.stream != nullptr) s.stream->Cancel();
  }

  // Runs on the partition's thread until StopLocked: follows the partition from `fetched`,
  // reopening the stream after errors, and fills the buffer (waiting while it is full).
  void FetchLoop(PartitionState* s) {
    Backoff backoff({.initial = absl::Milliseconds(50), .max = absl::Seconds(2)});
    bool from_earliest = false;
    std::vector<ConsumedRecord> records;
    while (true) {
      ReadSpec spec;
      spec.topic = s->tp.topic;
      spec.partition = s->tp.partition;
      spec.follow = true;
      {
        absl::MutexLock l(&mu_);
        if (s->stopping) return;
        spec.offset = s->fetched;
      }
      // After OUT_OF_RANGE (retention removed the next offset) resume at the start offset.
      spec.start = from_earliest ? ReadSpec::kEarliest : ReadSpec::kOffset;
      std::unique_ptr<ReadStream> stream = reader_->Open(spec);
      {
        absl::MutexLock l(&mu_);
        s->stream = stream.get();
        if (s->stopping) stream->Cancel();
      }
      while (stream->Next(&records)) {
        absl::MutexLock l(&mu_);
        auto room = [this, s]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return s->stopping || s->buffered_bytes < options_.max_buffered_bytes_per_partition;
        };
        mu_.Await(absl::Condition(&room));
        if (s->stopping) break;
        for (ConsumedRecord& r : records) {
          s->buffered_bytes += consumer_internal::RecordBytes(r);
          s->fetched = r.offset + 1;
          s->buffer.push_back(std::move(r));
        }
        from_earliest = false;
        backoff.Reset();
      }
      absl::Status status = stream->Finish();
      {
        absl::MutexLock l(&mu_);
        s->stream = nullptr;
        if (s->stopping) return;
        ++stats_.read_retries;
      }
      stream.reset();
      if (absl::IsOutOfRange(status)) {
        from_earliest = true;
      } else if (!status.ok() && !IsTransient(status) && !absl::IsNotFound(status)) {
        Fail(absl::Status(status.code(), absl::StrCat("reading ", s->tp.topic, ":", s->tp.partition,
                                                      " failed: ", status.message())));
        return;
      }
      const absl::Duration delay = backoff.NextDelay(status);
      absl::MutexLock l(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&s->stopping), delay);
    }
  }

  const ConsumerOptions options_;
  const std::string client_id_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::GroupService::Stub> stub_;
  std::unique_ptr<Reader> reader_;  // outlives every stream: partitions_ are emptied first
  std::thread heartbeat_thread_;
  absl::Time last_auto_commit_ = absl::InfinitePast();  // the application's thread only

  absl::Mutex mu_;
  std::string member_id_ ABSL_GUARDED_BY(mu_);
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<TopicPartition, std::unique_ptr<PartitionState>> partitions_ ABSL_GUARDED_BY(mu_);
  std::map<TopicPartition, RevokedPosition> revoked_ ABSL_GUARDED_BY(mu_);
  std::map<TopicPartition, int64_t> committed_offsets_ ABSL_GUARDED_BY(mu_);
  size_t next_queue_ ABSL_GUARDED_BY(mu_) = 0;  // Poll's fairness rotation
  ConsumerStats stats_ ABSL_GUARDED_BY(mu_);
  absl::Status failed_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool heartbeat_requested_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t heartbeats_started_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t last_applied_seq_ ABSL_GUARDED_BY(mu_) = 0;
  grpc::ClientContext* inflight_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(const std::string& target,
                                                           ConsumerOptions options) {
  return Create(CreateEvlogChannel(target), std::move(options));
}

absl::StatusOr<std::unique_ptr<Consumer>> Consumer::Create(std::shared_ptr<grpc::Channel> channel,
                                                           ConsumerOptions options) {
  if (absl::Status s = consumer_internal::ValidateOptions(options); !s.ok()) return s;
  auto consumer = std::make_unique<ConsumerImpl>(std::move(channel), std::move(options));
  if (absl::Status s = consumer->Start(); !s.ok()) return s;
  return consumer;
}

}  // namespace evlog::client
