// Producer: appends records to topics over evlog's pipelined ProducerService.Produce stream.
//
// Records given to Send are gathered per (topic, partition) into batches; a batch is sent when
// it reaches ProducerOptions::batch_max_bytes / batch_max_records, when it is
// ProducerOptions::linger old, or on Flush. Each batch is encoded as records are sent, in the
// server's storage format (storage/batch_format.h), and sent as ProduceRequest.batch: the
// server checks the bytes and stores them unchanged, with no per-record work on either side
// beyond the encoding. A record without a timestamp (timestamp_ms <= 0) gets the client's clock
// at Send (the server does not replace timestamps of such batches). Up to max_in_flight batches are
// on the stream at once; the server answers them in order and each answer is matched to its request
// by request_id. A record is acknowledged only when the server has stored it durably.
//
// Example:
//   auto producer = evlog::client::Producer::Create("127.0.0.1:7070", {});
//   for (...) {
//     absl::Status s = producer->Send("orders", {.key = id, .value = json});
//     if (!s.ok()) return s;  // e.g. NOT_FOUND: no such topic
//   }
//   absl::Status s = producer->Flush(absl::Now() + absl::Seconds(30));  // all acknowledged?
//
// Partitioning: a record goes to the partition given to Send, else to the partition of its key
// by the hash of evlog/v1/partitioner.h (the server's own rule), computed here so a batch may
// hold records of many keys. The topic's partition count is fetched once per topic.
//
// Idempotence and retries (ProducerOptions::idempotent, the default): the producer gets a
// producer id from the server (InitProducer) when it first sends, and every batch carries that
// id and the per-partition sequence number of its first record. A batch whose outcome is
// unknown (the stream broke, the connection was reset or went silent, the acknowledgement timed
// out) or that was pushed back (RESOURCE_EXHAUSTED, UNAVAILABLE) is resent on a new stream
// with the same id and sequence, after a backoff with full jitter that honours the server's
// retry hint, until its delivery_timeout: the server stores it once and answers a retry with
// the original offsets. Order: records sent to one partition are stored in the order of the
// Send calls. At most 5 batches of a partition are in flight (the server remembers the last 5
// per producer), and only 1 until the server has stored one under the partition's producer id
// (it lets an unknown id start at any sequence, so a second batch could overtake a refused
// first); after a failure the partition's batches in flight are all answered first,
// then resent in sequence order. If a batch fails for good (NOT_FOUND, INVALID_ARGUMENT,
// DEADLINE_EXCEEDED after delivery_timeout...), later batches of its partition, which the
// server then refuses as a "sequence gap", are renumbered under a fresh producer id once
// none of them can have been stored, so the partition goes on.
// A keepalive ping every 10 s (channel.h) notices a silently dropped connection within ~15 s.
// With idempotent = false (or a server without InitProducer), only RESOURCE_EXHAUSTED is
// retried (and only if no later batch of the partition was stored meanwhile); other errors
// fail the batch, since a resend could store it twice.
//
// Deadlines: each batch must be acknowledged within ack_timeout of being sent, or the stream
// is cancelled and its unacknowledged batches fail with DEADLINE_EXCEEDED (they may or may not
// be stored); a batch not acknowledged within delivery_timeout of its Send, retries included,
// fails with DEADLINE_EXCEEDED. A broken stream fails its unacknowledged batches with the
// stream's status (usually UNAVAILABLE); the next batch opens a new stream.
//
// Thread safety: Send, Flush, FirstError and Stats may be called from any thread
// concurrently. Callbacks run on the producer's internal thread: they must not block and must
// not call Flush or Close.
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
#include "client/record.h"

namespace evlog::client {

struct ProducerOptions {
  // A batch is sent once it holds about this many bytes (the encoded batch: records plus a few
  // bytes of framing each, and a 56-byte header), capped at the server's --max-batch-bytes. Bigger
  // batches mean fewer requests and fsyncs. Default: 1 MiB.
  int64_t batch_max_bytes = 1 << 20;
  // A batch is sent once it holds this many records (capped at the server's limit).
  // Default: 16384.
  int32_t batch_max_records = 16384;
  // A batch that is not full is sent this long after its first record. Trades latency for
  // batching. Default: 5 ms.
  absl::Duration linger = absl::Milliseconds(5);
  // Batches on the stream without an answer yet (capped at the server's
  // max_inflight_per_stream). More hides more round trips and fsync latency. Default: 8.
  int32_t max_in_flight = 8;
  // Send blocks while records of this many bytes are unacknowledged. Default: 64 MiB.
  int64_t max_buffered_bytes = 64 << 20;
  // Deadline for a sent batch's acknowledgement. Default: 30 s.
  absl::Duration ack_timeout = absl::Seconds(30);
  // Deadline for a record's final outcome from its Send, retries included; also the longest
  // Send blocks on a full buffer. Default: 2 min.
  absl::Duration delivery_timeout = absl::Minutes(2);
  // Deadline of the producer's own unary calls (DescribeTopic, DescribeServer, InitProducer).
  // Default: 30 s.
  absl::Duration call_timeout = absl::Seconds(30);
  // Send every batch with a producer id and sequence numbers so that resends after lost
  // acknowledgements and broken connections are stored exactly once (see above). Default: true.
  bool idempotent = true;
};

// Where an acknowledged record was stored.
struct RecordMetadata {
  int32_t partition = 0;
  int64_t offset = 0;
};

// Counters since creation.
struct ProducerStats {
  int64_t records_sent = 0;          // accepted by Send
  int64_t records_acknowledged = 0;  // stored durably
  int64_t records_failed = 0;
  int64_t records_retried = 0;  // records in resent batches (counted per resend)
  int64_t batches_sent = 0;     // requests written to the stream, resends included
  int64_t batches_retried = 0;
  int64_t streams_opened = 0;
  int64_t producer_ids = 0;  // producer ids obtained from the server (InitProducer)
};

class Producer {
 public:
  // Called once per record with its outcome, on the producer's thread; must not block.
  using Callback = std::function<void(absl::StatusOr<RecordMetadata>)>;

  // A producer for the server at `target` ("HOST:PORT"). Connects lazily. Asks the server for
  // its limits (DescribeServer) on the first Send and sizes batches within them.
  static std::unique_ptr<Producer> Create(const std::string& target,
                                          const ProducerOptions& options = {});
  static std::unique_ptr<Producer> Create(std::shared_ptr<grpc::Channel> channel,
                                          const ProducerOptions& options = {});

  // Closes with a deadline of ProducerOptions::ack_timeout: records not acknowledged by then
  // fail with CANCELLED.
  virtual ~Producer() = default;

  // Queues `record` for `topic`, to `partition` if given, else to the partition of its key.
  // Returns at once unless max_buffered_bytes are unacknowledged; then blocks until there is
  // room (at most delivery_timeout, then RESOURCE_EXHAUSTED). OK means queued, not stored:
  // the outcome goes to `done` (if not null) and shows in Flush.
  // Errors: INVALID_ARGUMENT for a record over the server's record size limit; NOT_FOUND /
  // transport errors from fetching the server's limits or the topic's partition count (the
  // latter only without `partition`); FAILED_PRECONDITION after Close; RESOURCE_EXHAUSTED as
  // above.
  virtual absl::Status Send(const std::string& topic, ProducerRecord record,
                            std::optional<int32_t> partition = std::nullopt,
                            Callback done = nullptr) = 0;

  // Sends every queued record now and waits until each record sent before this call has its
  // outcome, or `deadline` passes (then DEADLINE_EXCEEDED; the records stay queued).
  // Returns OK if all of them were acknowledged, else the first error among them
  // (with its code: NOT_FOUND, OUT_OF_RANGE, INVALID_ARGUMENT, RESOURCE_EXHAUSTED,
  // UNAVAILABLE, DEADLINE_EXCEEDED ...).
  virtual absl::Status Flush(absl::Time deadline) = 0;

  // The first error of any record so far (OK if none). Cheap; lets a bulk sender stop early.
  virtual absl::Status FirstError() = 0;

  // Flushes until `deadline`, then ends the stream; records still unacknowledged fail with
  // CANCELLED. Returns Flush's result. Later Sends fail with FAILED_PRECONDITION.
  virtual absl::Status Close(absl::Time deadline) = 0;

  virtual ProducerStats Stats() = 0;
};

}  // namespace evlog::client
