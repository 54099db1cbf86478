// LogStore: consumer groups' committed offsets and coordinator state in the meta column
// family (layout in meta_format.h). Commits are written directly, synced; RocksDB's own write
// group lets concurrent commits and appends share fsyncs.
#include <algorithm>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "rocksdb/write_batch.h"
#include "storage/coding.h"
#include "storage/log_store_impl.h"
#include "storage/rocks_status.h"

namespace evlog::storage {

namespace {

absl::Status CheckGroupName(absl::string_view group) {
  if (!IsValidTopicName(group)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid group name '", group, "': use 1 to 249 characters from [A-Za-z0-9._-]"));
  }
  return absl::OkStatus();
}

rocksdb::WriteOptions Synced() {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return wo;
}

}  // namespace

absl::Status LogStoreImpl::CommitOffsets(absl::string_view group, absl::string_view topic_name,
                                         const std::vector<std::pair<int32_t, int64_t>>& offsets) {
  if (absl::Status s = CheckGroupName(group); !s.ok()) return s;
  if (offsets.empty()) return absl::InvalidArgumentError("no offsets to commit");
  absl::StatusOr<std::shared_ptr<TopicState>> t = FindTopic(topic_name);
  if (!t.ok()) return t.status();
  const TopicState& topic = **t;
  const int64_t now = NowMs();
  rocksdb::WriteBatch wb;
  {
    absl::ReaderMutexLock l(&topic.mu);
    for (const auto& [partition, offset] : offsets) {
      if (partition < 0 || partition >= topic.config.partitions) {
        return absl::OutOfRangeError(
            absl::StrCat("topic '", topic.name, "' has no partition ", partition));
      }
      const int64_t end = topic.partitions[partition].high_watermark;
      if (offset < 0 || offset > end) {
        return absl::OutOfRangeError(absl::StrCat(
            "cannot commit offset ", offset, " for topic '", topic.name, "' partition ", partition,
            ": committed offsets must be between 0 and the end offset ", end));
      }
      std::string value = meta::EncodeU64(static_cast<uint64_t>(offset));
      PutFixed64(&value, static_cast<uint64_t>(now));
      wb.Put(meta_cf_, meta::CommittedOffsetKey(group, topic.id, partition), value);
    }
  }
  return FromRocks(db_->Write(Synced(), &wb), "committing offsets");
}

absl::StatusOr<std::vector<GroupOffset>> LogStoreImpl::FetchOffsets(absl::string_view group) const {
  if (absl::Status s = CheckGroupName(group); !s.ok()) return s;
  absl::flat_hash_map<uint32_t, std::string> names;
  {
    absl::ReaderMutexLock l(&topics_mu_);
    for (const auto& [name, t] : topics_) names[t->id] = name;
  }
  std::vector<GroupOffset> out;
  const std::string prefix = meta::GroupOffsetsPrefix(group);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (it->key().size() != prefix.size() + 8 || it->value().size() != 16) {
      return absl::DataLossError(
          absl::StrCat("committed offset of group '", group, "' is corrupt"));
    }
    const uint32_t topic_id = DecodeBigEndian32(it->key().data() + prefix.size());
    auto name = names.find(topic_id);
    if (name == names.end()) continue;  // the topic was deleted
    GroupOffset o;
    o.topic = name->second;
    o.partition = static_cast<int32_t>(DecodeBigEndian32(it->key().data() + prefix.size() + 4));
    o.offset = static_cast<int64_t>(DecodeFixed64(it->value().data()));
    o.commit_time_ms = static_cast<int64_t>(DecodeFixed64(it->value().data() + 8));
    out.push_back(std::move(o));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading committed offsets");
  std::sort(out.begin(), out.end(), [](const GroupOffset& a, const GroupOffset& b) {
    return std::tie(a.topic, a.partition) < std::tie(b.topic, b.partition);
  });
  return out;
}

std::vector<std::string> LogStoreImpl::ListGroups() const {
  std::set<std::string> groups;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  for (char prefix : {meta::kCommittedOffsetPrefix, meta::kGroupStatePrefix}) {
    for (it->Seek(std::string(1, prefix)); it->Valid() && it->key()[0] == prefix;) {
      std::string key = it->key().ToString();
      std::string group = key.substr(1, key.find('\0', 1) - 1);
      groups.insert(group);
      if (prefix == meta::kGroupStatePrefix) {
        it->Next();
      } else {
        std::string past = meta::GroupOffsetsPrefix(group);
        past.back() = '\1';  // just past every key of this group
        it->Seek(past);
      }
    }
  }
  return std::vector<std::string>(groups.begin(), groups.end());
}

absl::Status LogStoreImpl::DeleteGroup(absl::string_view group) {
  if (absl::Status s = CheckGroupName(group); !s.ok()) return s;
  const std::string prefix = meta::GroupOffsetsPrefix(group);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  it->Seek(prefix);
  const bool has_offsets = it->Valid() && it->key().starts_with(prefix);
  std::string state;
  const bool has_state =
      db_->Get(rocksdb::ReadOptions(), meta_cf_, meta::GroupStateKey(group), &state).ok();
  if (!has_offsets && !has_state) {
    return absl::NotFoundError(absl::StrCat("group '", group, "' does not exist"));
  }
  std::string limit = prefix;
  limit.back() = '\1';
  rocksdb::WriteBatch wb;
  wb.DeleteRange(meta_cf_, prefix, limit);
  wb.Delete(meta_cf_, meta::GroupStateKey(group));
  return FromRocks(db_->Write(Synced(), &wb), "deleting a group");
}

absl::Status LogStoreImpl::PutGroupState(absl::string_view group, absl::string_view state) {
  if (absl::Status s = CheckGroupName(group); !s.ok()) return s;
  return FromRocks(db_->Put(Synced(), meta_cf_, meta::GroupStateKey(group),
                            rocksdb::Slice(state.data(), state.size())),
                   "storing group state");
}

absl::StatusOr<std::string> LogStoreImpl::GetGroupState(absl::string_view group) const {
  if (absl::Status s = CheckGroupName(group); !s.ok()) return s;
  std::string state;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), meta_cf_, meta::GroupStateKey(group), &state);
  if (s.IsNotFound()) {
    return absl::NotFoundError(absl::StrCat("group '", group, "' has no stored state"));
  }
  if (!s.ok()) return FromRocks(s, "reading group state");
  return state;
}

}  // namespace evlog::storage
