// SpooledProducer: a producer that keeps accepting events while evlogd cannot be reached, by
// writing every batch to a durable local spool (client/spool.h) before sending it, and
// delivers them in order and exactly once when the server answers again.
//
// One code path: the spool is a write-ahead buffer, not a fallback. Every batch goes
// Send -> (gathered per partition) -> spool (fsynced) -> drain thread -> server -> ack ->
// deleted from the spool, whether the server is up or down. There is no second "direct" path
// whose ordering or deduplication could differ from the outage path.
//
// Example:
//   auto producer = SpooledProducer::Open("127.0.0.1:7070", "/var/spool/app", {});
//   if (!producer.ok()) return producer.status();  // e.g. the spool is in use
//   for (...) {
//     absl::Status s = (*producer)->Send("orders", {.key = id, .value = json});
//     if (!s.ok()) return s;  // RESOURCE_EXHAUSTED: spool full (kFail), NOT_FOUND ...
//   }
//   auto result = (*producer)->Flush(absl::Now() + absl::Seconds(10));
//   // result->acknowledged records are stored by the server; result->spooled are durable
//   // in the spool and will be delivered by this or a later producer on the same directory.
//
// Outcomes of a record: accepted by Send (in memory, gathered for ~linger); then Spooled
// (durable in the spool: a crash of the producer loses nothing from here on); then
// Acknowledged by the server (stored durably there) or Dead-lettered (refused for good: moved
// to the spool's dead-letter area, kept on disk, counted, logged; never silently dropped).
//
// Delivery: a drain thread sends spooled batches in spool order on a pipelined Produce stream,
// with at most max_in_flight batches unanswered and at most 5 per partition (the server
// recognises a retry only among a partition's last 5 batches). Each batch carries the spool's
// producer id and the sequence numbers it got when spooled, so a resend after any failure or
// restart (of this process or of the server) is deduplicated by the server. On a broken
// stream, UNAVAILABLE, RESOURCE_EXHAUSTED or an ack overdue by ack_timeout, the drain waits
// for the stream's other answers, backs off (exponential, full jitter, honouring the server's
// retry-after hint) and resends from the first unacknowledged batch, in order. A "sequence
// gap" answer for a batch whose predecessor is being resent is expected and the batch is
// resent after it. ALREADY_EXISTS means already stored: treated as acknowledged (its offsets
// are then unknown, reported as -1).
//
// Refused for good (NOT_FOUND, INVALID_ARGUMENT, OUT_OF_RANGE, FAILED_PRECONDITION "fenced" or
// an unexpected "sequence gap", DATA_LOSS ...): the batch is dead-lettered, and its
// partition's later batches are sent under a fresh producer id (see spool.h).
//
// Partitions: Send routes a record without a partition by its key's hash
// (evlog/v1/partitioner.h), which needs the topic's partition count: asked from the server
// once and cached in the spool, so a producer restarted during an outage still routes keyed
// records. A topic never seen by this spool while the server is unreachable: Send fails with
// UNAVAILABLE (name the partition to spool anyway).
//
// Thread safety: every method may be called from any thread. Callbacks run on the producer's
// internal threads: they must not block and must not call Flush or Close.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/backoff.h"
#include "client/record.h"
#include "client/spool.h"

namespace evlog::client {

struct SpooledProducerOptions {
  // The spool's size limit and what Send does when it is full (block or fail). Default:
  // 1 GiB, block.
  SpoolOptions spool;
  // With SpoolFullPolicy::kBlock, the longest Send waits for room before failing with
  // RESOURCE_EXHAUSTED. Default: infinite (a blocked producer waits for the server).
  absl::Duration block_timeout = absl::InfiniteDuration();
  // A batch is spooled this long after its first record, unless full earlier. Default: 5 ms.
  absl::Duration linger = absl::Milliseconds(5);
  // A batch is spooled once it holds about this many bytes (capped by the server's
  // --max-batch-bytes as last seen, minus framing). Default: 1 MiB.
  int64_t batch_max_bytes = 1 << 20;
  // ... or this many records (capped by the server's --max-batch-records). Default: 16384.
  int32_t batch_max_records = 16384;
  // Batches sent and not yet answered, on the one stream (capped by the server's
  // max_inflight_per_stream; at most 5 per partition regardless). Default: 16.
  int32_t max_in_flight = 16;
  // A sent batch must be answered within this, else the stream is cancelled and resent from
  // the first unanswered batch (a blackholed connection is noticed by this or by keepalive,
  // whichever comes first). Default: 10 s.
  absl::Duration ack_timeout = absl::Seconds(10);
  // Deadline of unary calls (InitProducer, DescribeTopic, DescribeServer). Default: 5 s.
  absl::Duration call_timeout = absl::Seconds(5);
  // Delays between attempts while the server cannot be reached. Default: 50 ms doubling to
  // 5 s, full jitter.
  BackoffOptions backoff;
};

// A record's progress, as reported to its callback.
struct SendOutcome {
  enum class State {
    kSpooled,       // durable in the spool
    kAcknowledged,  // stored by the server (offset; -1 if the server only said "already
                    // stored")
    kDeadLettered,  // refused for good; `status` says why; kept in the spool's dead letters
    kFailed,        // could not be spooled (I/O error); `status` says why; not accepted
  };
  State state = State::kSpooled;
  absl::Status status;
  std::string topic;
  int32_t partition = 0;
  int64_t offset = -1;
};

// Counters since Open.
struct SpooledProducerStats {
  int64_t records_sent = 0;          // accepted by Send
  int64_t records_spooled = 0;       // made durable in the spool
  int64_t records_acknowledged = 0;  // stored by the server (also of batches spooled before
                                     // this Open)
  int64_t records_retried = 0;       // records in batches sent again
  int64_t records_dead_lettered = 0;
  int64_t batches_dead_lettered = 0;
  int64_t spool_bytes = 0;    // bytes in the spool now (pending + dead letters)
  int64_t spool_records = 0;  // records pending in the spool now
  int64_t spool_batches = 0;  // batches pending in the spool now
  int64_t reconnects = 0;     // streams re-opened after a failure
};

// Where the records Sent through this producer stand (Flush, Close).
struct FlushResult {
  int64_t sent = 0;           // records accepted by Send since Open
  int64_t acknowledged = 0;   // of those, stored by the server
  int64_t spooled = 0;        // of those, durable in the spool, not yet acknowledged
  int64_t dead_lettered = 0;  // of those, refused for good (in the dead-letter area)
  int64_t failed = 0;         // of those, never spooled (I/O error)
};

class SpooledProducer {
 public:
  using Callback = std::function<void(const SendOutcome&)>;

  // Opens the spool in `spool_dir` (creating it) and starts draining it to the server at
  // `target` ("HOST:PORT") or over `channel`. Never waits for the server. Errors: those of
  // Spool::Open (FAILED_PRECONDITION if the directory is in use, DATA_LOSS, INTERNAL).
  static absl::StatusOr<std::unique_ptr<SpooledProducer>> Open(
      const std::string& target, const std::string& spool_dir,
      const SpooledProducerOptions& options = {});
  static absl::StatusOr<std::unique_ptr<SpooledProducer>> Open(
      std::shared_ptr<grpc::Channel> channel, const std::string& spool_dir,
      const SpooledProducerOptions& options = {});

  // Close(absl::Now()): what is not acknowledged stays in the spool.
  virtual ~SpooledProducer() = default;

  // Accepts `record` for `topic`, to `partition` if given, else to the partition of its key.
  // Returns once the record is gathered in memory; it is spooled within `linger` (see Flush).
  // `done` (may be null) is called with kSpooled, then kAcknowledged or kDeadLettered if that
  // happens while this producer is open; or once with kFailed.
  // Errors: RESOURCE_EXHAUSTED if the spool is full (at once with kFail; after block_timeout
  // with kBlock); INVALID_ARGUMENT for a record over the server's size limit or a bad
  // partition; NOT_FOUND for an unknown topic, UNAVAILABLE if the topic's partition count is
  // needed and unknown while the server is unreachable; FAILED_PRECONDITION after Close; the
  // spool's I/O error if it failed. Nothing is accepted on error.
  virtual absl::Status Send(const std::string& topic, ProducerRecord record,
                            std::optional<int32_t> partition = std::nullopt,
                            Callback done = nullptr) = 0;

  // Spools every record accepted so far now and waits until they are durable in the spool (a
  // crash loses none of them from here on), or `deadline` (DEADLINE_EXCEEDED). Errors: the
  // spool's I/O error if spooling failed.
  virtual absl::Status WaitSpooled(absl::Time deadline) = 0;

  // Spools every record accepted so far now, waits until they are durable, then until they
  // are acknowledged (or dead-lettered) or `deadline` passes. Returns where the records sent
  // since Open stand. Errors: DEADLINE_EXCEEDED if records were not even spooled by
  // `deadline`; the spool's I/O error if spooling failed.
  virtual absl::StatusOr<FlushResult> Flush(absl::Time deadline) = 0;

  // Waits until the spool holds no pending batch (everything, including batches spooled
  // before this Open, is acknowledged or dead-lettered), or `deadline`. Returns OK when empty,
  // else DEADLINE_EXCEEDED with the last delivery error in the message.
  virtual absl::Status WaitUntilDrained(absl::Time deadline) = 0;

  // Flushes until `deadline`, then stops the drain and closes the spool; records not yet
  // acknowledged stay in the spool for the next producer on it. Later Sends fail with
  // FAILED_PRECONDITION. Returns Flush's result.
  virtual absl::StatusOr<FlushResult> Close(absl::Time deadline) = 0;

  virtual SpooledProducerStats Stats() = 0;

  // The last error the drain met (OK if none or after a success): why the spool is not
  // draining, for messages to people.
  virtual absl::Status LastDeliveryError() = 0;
};

}  // namespace evlog::client
