// Encoders and decoders for the keys and values of meta_format.h.
#include <cstdio>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "storage/coding.h"
#include "storage/meta_format.h"

namespace evlog::storage::meta {

std::string SegmentName(uint32_t topic_id, uint64_t seq) {
  return absl::StrFormat("%s%08x.%016x", kSegmentPrefix, topic_id, seq);
}

bool ParseSegmentName(absl::string_view name, uint32_t* topic_id, uint64_t* seq) {
  const absl::string_view prefix(kSegmentPrefix);
  if (name.size() != prefix.size() + 8 + 1 + 16 || name.substr(0, prefix.size()) != prefix) {
    return false;
  }
  unsigned int id = 0;
  unsigned long long s = 0;
  std::string copy(name.substr(prefix.size()));
  if (std::sscanf(copy.c_str(), "%8x.%16llx", &id, &s) != 2) return false;
  *topic_id = id;
  *seq = s;
  return true;
}

std::string BatchKey(uint32_t partition, int64_t base_offset) {
  std::string key;
  key.reserve(12);
  PutBigEndian32(&key, partition);
  PutBigEndian64(&key, static_cast<uint64_t>(base_offset));
  return key;
}

void ParseBatchKey(absl::string_view key, uint32_t* partition, int64_t* base_offset) {
  *partition = DecodeBigEndian32(key.data());
  *base_offset = static_cast<int64_t>(DecodeBigEndian64(key.data() + 4));
}

std::string TopicKey(absl::string_view name) {
  std::string key(1, kTopicPrefix);
  key.append(name.data(), name.size());
  return key;
}

std::string TopicScopedPrefix(char prefix, uint32_t topic_id) {
  std::string key(1, prefix);
  PutBigEndian32(&key, topic_id);
  return key;
}

std::string TopicScopedLimit(char prefix, uint32_t topic_id) {
  if (topic_id == UINT32_MAX) return std::string(1, static_cast<char>(prefix + 1));
  return TopicScopedPrefix(prefix, topic_id + 1);
}

std::string StartOffsetKey(uint32_t topic_id, uint32_t partition) {
  std::string key = TopicScopedPrefix(kStartOffsetPrefix, topic_id);
  PutBigEndian32(&key, partition);
  return key;
}

std::string SegmentRecordKey(uint32_t topic_id, uint64_t seq) {
  std::string key = TopicScopedPrefix(kSegmentRecordPrefix, topic_id);
  PutBigEndian64(&key, seq);
  return key;
}

std::string SegmentDurableKey(uint32_t topic_id, uint64_t seq) {
  std::string key = TopicScopedPrefix(kSegmentDurablePrefix, topic_id);
  PutBigEndian64(&key, seq);
  return key;
}

std::string IndexKey(uint32_t topic_id, uint64_t seq, uint32_t partition) {
  std::string key = TopicScopedPrefix(kIndexPrefix, topic_id);
  PutBigEndian64(&key, seq);
  PutBigEndian32(&key, partition);
  return key;
}

std::string EpochKey(uint32_t topic_id, uint32_t partition, uint32_t epoch) {
  std::string key = TopicScopedPrefix(kEpochPrefix, topic_id);
  PutBigEndian32(&key, partition);
  PutBigEndian32(&key, epoch);
  return key;
}

std::string GroupOffsetsPrefix(absl::string_view group) {
  std::string key(1, kCommittedOffsetPrefix);
  key.append(group.data(), group.size());
  key.push_back('\0');
  return key;
}

std::string CommittedOffsetKey(absl::string_view group, uint32_t topic_id, uint32_t partition) {
  std::string key = GroupOffsetsPrefix(group);
  PutBigEndian32(&key, topic_id);
  PutBigEndian32(&key, partition);
  return key;
}

std::string GroupStateKey(absl::string_view group) {
  std::string key(1, kGroupStatePrefix);
  key.append(group.data(), group.size());
  return key;
}

std::string ProducerStateKey(uint32_t topic_id, uint32_t partition, int64_t producer_id) {
  std::string key = TopicScopedPrefix(kProducerStatePrefix, topic_id);
  PutBigEndian32(&key, partition);
  PutBigEndian64(&key, static_cast<uint64_t>(producer_id));
  return key;
}

std::string ProducerQuotaKey(int64_t producer_id) {
  std::string key(1, kProducerQuotaPrefix);
  PutBigEndian64(&key, static_cast<uint64_t>(producer_id));
  return key;
}

std::string EncodeTopicRecord(const TopicRecord& topic) {
  nlohmann::json j = {{"v", 1},
                      {"id", topic.id},
                      {"partitions", topic.config.partitions},
                      {"retention_ms", topic.config.retention_ms},
                      {"retention_bytes", topic.config.retention_bytes},
                      {"created_ms", topic.created_ms}};
  // Written only when set, so that a topic without a quota has the record older builds wrote.
  if (!topic.config.quota.unlimited()) {
    j["quota_bytes_per_sec"] = topic.config.quota.bytes_per_sec;
    j["quota_records_per_sec"] = topic.config.quota.records_per_sec;
  }
  return j.dump();
}

absl::optional<TopicRecord> DecodeTopicRecord(absl::string_view value) {
  nlohmann::json j = nlohmann::json::parse(value.begin(), value.end(), nullptr,
                                           /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("v", 0) != 1) return absl::nullopt;
  try {
    TopicRecord t;
    t.id = j.at("id").get<uint32_t>();
    t.config.partitions = j.at("partitions").get<int32_t>();
    t.config.retention_ms = j.at("retention_ms").get<int64_t>();
    t.config.retention_bytes = j.at("retention_bytes").get<int64_t>();
    t.created_ms = j.at("created_ms").get<int64_t>();
    t.config.quota.bytes_per_sec = j.value("quota_bytes_per_sec", int64_t{0});
    t.config.quota.records_per_sec = j.value("quota_records_per_sec", int64_t{0});
    if (t.config.quota.bytes_per_sec < 0 || t.config.quota.records_per_sec < 0) {
      return absl::nullopt;
    }
    return t;
  } catch (const nlohmann::json::exception&) {
    return absl::nullopt;
  }
}

std::string EncodeIndexEntry(const IndexEntry& e) {
  std::string v;
  v.reserve(40);
  PutFixed64(&v, static_cast<uint64_t>(e.first_offset));
  PutFixed64(&v, static_cast<uint64_t>(e.end_offset));
  PutFixed64(&v, e.bytes);
  PutFixed64(&v, static_cast<uint64_t>(e.last_append_ms));
  PutFixed64(&v, static_cast<uint64_t>(e.max_timestamp_ms));
  return v;
}

absl::optional<IndexEntry> DecodeIndexEntry(absl::string_view v) {
  if (v.size() != 40) return absl::nullopt;
  IndexEntry e;
  e.first_offset = static_cast<int64_t>(DecodeFixed64(v.data()));
  e.end_offset = static_cast<int64_t>(DecodeFixed64(v.data() + 8));
  e.bytes = DecodeFixed64(v.data() + 16);
  e.last_append_ms = static_cast<int64_t>(DecodeFixed64(v.data() + 24));
  e.max_timestamp_ms = static_cast<int64_t>(DecodeFixed64(v.data() + 32));
  return e;
}

std::string EncodeProducerQuota(const Quota& quota) {
  std::string v;
  v.reserve(kProducerQuotaValueSize);
  PutFixed64(&v, static_cast<uint64_t>(quota.bytes_per_sec));
  PutFixed64(&v, static_cast<uint64_t>(quota.records_per_sec));
  return v;
}

absl::optional<Quota> DecodeProducerQuota(absl::string_view value) {
  if (value.size() != kProducerQuotaValueSize) return absl::nullopt;
  Quota q;
  q.bytes_per_sec = static_cast<int64_t>(DecodeFixed64(value.data()));
  q.records_per_sec = static_cast<int64_t>(DecodeFixed64(value.data() + 8));
  if (q.bytes_per_sec < 0 || q.records_per_sec < 0) return absl::nullopt;
  return q;
}

std::string EncodeU64(uint64_t v) {
  std::string s;
  PutFixed64(&s, v);
  return s;
}

absl::optional<uint64_t> DecodeU64(absl::string_view value) {
  if (value.size() != 8) return absl::nullopt;
  return DecodeFixed64(value.data());
}

}  // namespace evlog::storage::meta
