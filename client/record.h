// Records as the client library hands them to applications and as the CLI prints them.
// Plain structs; no behaviour.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace evlog::client {

// One header of a record: a name (UTF-8 text) and a byte-string value. Order is preserved.
struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
};

// A record to produce. `timestamp_ms` <= 0: stamped with the current time, by the Producer at
// Send (client clock) or, for records sent through the spool, by the server at append.
struct ProducerRecord {
  std::string key;  // may be empty; picks the partition when none is named
  std::string value;
  std::vector<Header> headers;
  int64_t timestamp_ms = -1;  // milliseconds since the Unix epoch
};

// A record as read back: where it is and what it holds.
struct ConsumedRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t timestamp_ms = 0;  // milliseconds since the Unix epoch
  std::string key;
  std::string value;
  std::vector<Header> headers;
  bool operator==(const ConsumedRecord&) const = default;
};

}  // namespace evlog::client
