// Reader: reads partitions over evlog's ReaderService, from an offset, from the beginning or
// from a time, up to an optional end offset, optionally following new appends (long poll).
//
// Example (print partition 0 of "orders" from its beginning up to its current end):
//   auto reader = evlog::client::Reader::Create("127.0.0.1:7070");
//   auto stream = reader->Open({.topic = "orders", .partition = 0,
//                               .start = evlog::client::ReadSpec::kEarliest});
//   std::vector<evlog::client::ConsumedRecord> records;
//   while ((*stream)->Next(&records)) for (auto& r : records) Print(r);
//   absl::Status s = (*stream)->Finish();
//
// Deadlines: a read stream can rightly last for hours (a follower of a quiet topic), so a
// fixed gRPC deadline does not fit. Instead every stream has an idle deadline: if no response
// arrives for ReaderOptions::idle_timeout the stream is cancelled and ends with
// DEADLINE_EXCEEDED. Following streams ask the server for heartbeats (empty responses) well
// within that time, so a quiet partition is told apart from a dead connection. A ReadSpec may
// add an absolute deadline too.
//
// Raw batches: by default the stream asks for whole stored batches and decodes them itself
// (ReaderOptions::raw_batches), trimming them to the records the server says to deliver; the
// records handed out are the same as with decoded records.
//
// Thread safety: Reader may be used from any thread. A ReadStream is used by one thread,
// except Cancel(), which any thread may call at any time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/channel.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/record.h"

namespace evlog::client {

struct ReaderOptions {
  // A stream that receives no response for this long is cancelled (DEADLINE_EXCEEDED).
  // Default: 30 s.
  absl::Duration idle_timeout = absl::Seconds(30);
  // With follow: the interval of the server's heartbeats. Must be well below idle_timeout.
  // Default: 5 s.
  absl::Duration heartbeat = absl::Seconds(5);
  // Bound on one response's size; 0: the server's default (1 MiB).
  int32_t max_bytes_per_response = 0;
  // Ask the server for whole stored batches (ReadRequest.raw_batches) and decode them here,
  // after checking each batch's CRC32C (a mismatch ends the stream with DATA_LOSS). Much
  // cheaper for both sides than decoded records, and what the server stores is what arrives.
  // A server without raw reads answers with records, which are handled the same way.
  // Default: true; false asks for decoded records.
  bool raw_batches = true;
};

// What to read.
struct ReadSpec {
  enum Start { kOffset, kTimestamp, kEarliest, kLatest };

  std::string topic;
  int32_t partition = 0;
  Start start = kOffset;
  int64_t offset = 0;        // with kOffset: in [start offset, end offset], else OUT_OF_RANGE
  int64_t timestamp_ms = 0;  // with kTimestamp: first record with timestamp >= this
  // Read only offsets below this one (exclusive).
  std::optional<int64_t> end_offset;
  // Stop after this many records; 0: no limit.
  int64_t max_records = 0;
  // Keep waiting for new records. Without it the stream ends at the partition's end offset as
  // of the call's start.
  bool follow = false;
  // An absolute deadline for the whole stream, besides the idle deadline.
  absl::Time deadline = absl::InfiniteFuture();
};

class ReadStream {
 public:
  virtual ~ReadStream() = default;

  // Blocks until the next records arrive and puts them (at least one, in offset order, dense)
  // into `*records`, replacing its contents. Returns false once the stream has ended; then
  // call Finish(). A raw batch failing its check ends the stream (Finish: DATA_LOSS) before
  // any of its records is returned.
  virtual bool Next(std::vector<ConsumedRecord>* records) = 0;

  // The offset to read next (one past the last record returned), and the partition's high
  // watermark as of the last response. Before the first response: -1.
  virtual int64_t next_offset() const = 0;
  virtual int64_t high_watermark() const = 0;

  // Ends the stream early: a blocked Next returns false. Thread-safe; idempotent.
  virtual void Cancel() = 0;

  // How the stream ended: OK at the end (end offset, max_records or, when not following, the
  // end offset as of the start) and after Cancel(); otherwise the server's status
  // (NOT_FOUND, OUT_OF_RANGE with the valid range, ...) or DEADLINE_EXCEEDED (idle or
  // absolute deadline). REQUIRES: Next returned false. Call once.
  virtual absl::Status Finish() = 0;
};

class Reader {
 public:
  // A client for the server at `target` ("HOST:PORT"); connects lazily.
  static std::unique_ptr<Reader> Create(const std::string& target,
                                        const ReaderOptions& options = {});
  static std::unique_ptr<Reader> Create(std::shared_ptr<grpc::Channel> channel,
                                        const ReaderOptions& options = {});

  // REQUIRES: every stream opened by this reader was destroyed.
  virtual ~Reader() = default;

  // Starts reading one partition. Never blocks; errors of the request (NOT_FOUND,
  // OUT_OF_RANGE, INVALID_ARGUMENT) are reported by the stream's Finish(), after Next
  // returned false. The stream must not outlive this Reader.
  virtual std::unique_ptr<ReadStream> Open(const ReadSpec& spec) = 0;
};

}  // namespace evlog::client
