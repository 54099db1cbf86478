// LogStore: durable quota settings. A topic's quota lives in its topic record ("t", rewritten
// in place); producer quotas are "q" keys of the meta column family (layout in
// meta_format.h). The store only keeps them: enforcement is the server's (server/quota.h).
// Every change is one synced write under admin_mu_, so read-modify-writes of concurrent admin
// calls never lose an update.
#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "rocksdb/write_batch.h"
#include "storage/coding.h"
#include "storage/log_store_impl.h"
#include "storage/rocks_status.h"

namespace evlog::storage {
namespace {

rocksdb::WriteOptions Synced() {
  rocksdb::WriteOptions wo;
  wo.sync = true;
  return wo;
}

absl::Status CheckChange(const QuotaChange& change) {
  if (change.bytes_per_sec.value_or(0) < 0 || change.records_per_sec.value_or(0) < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid quota (bytes/s ", change.bytes_per_sec.value_or(0), ", records/s ",
        change.records_per_sec.value_or(0), "): rates must be >= 0, and 0 means unlimited"));
  }
  return absl::OkStatus();
}

Quota Apply(Quota quota, const QuotaChange& change) {
  if (change.bytes_per_sec.has_value()) quota.bytes_per_sec = *change.bytes_per_sec;
  if (change.records_per_sec.has_value()) quota.records_per_sec = *change.records_per_sec;
  return quota;
}

absl::Status CheckProducerId(int64_t producer_id) {
  if (producer_id < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid producer id ", producer_id,
                     ": producer ids are > 0 (0 names the default producer quota)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Quota> LogStoreImpl::AlterTopicQuota(absl::string_view name,
                                                    const QuotaChange& change) {
  if (absl::Status s = CheckChange(change); !s.ok()) return s;
  absl::MutexLock admin(&admin_mu_);
  absl::StatusOr<std::shared_ptr<TopicState>> t = FindTopic(name);
  if (!t.ok()) return t.status();
  TopicState& topic = **t;
  Quota quota;
  {
    absl::ReaderMutexLock l(&topic.mu);
    if (topic.deleted) return absl::NotFoundError(absl::StrCat("topic '", name, "' was deleted"));
    quota = Apply(topic.quota, change);
  }
  meta::TopicRecord rec{.id = topic.id, .config = topic.config, .created_ms = topic.created_ms};
  rec.config.quota = quota;
  rocksdb::Status s =
      db_->Put(Synced(), meta_cf_, meta::TopicKey(topic.name), meta::EncodeTopicRecord(rec));
  if (!s.ok()) return FromRocks(s, absl::StrCat("changing the quota of topic ", topic.name));
  absl::MutexLock l(&topic.mu);
  topic.quota = quota;
  return quota;
}

absl::StatusOr<Quota> LogStoreImpl::SetProducerQuota(int64_t producer_id,
                                                     const QuotaChange& change) {
  if (absl::Status s = CheckProducerId(producer_id); !s.ok()) return s;
  if (absl::Status s = CheckChange(change); !s.ok()) return s;
  absl::MutexLock admin(&admin_mu_);
  const std::string key = meta::ProducerQuotaKey(producer_id);
  std::string value;
  Quota quota;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, key, &value);
  if (s.ok()) {
    absl::optional<Quota> stored = meta::DecodeProducerQuota(value);
    if (!stored.has_value()) {
      return absl::DataLossError(
          absl::StrCat("the stored quota of producer ", producer_id, " is corrupt"));
    }
    quota = *stored;
  } else if (!s.IsNotFound()) {
    return FromRocks(s, absl::StrCat("reading the quota of producer ", producer_id));
  }
  quota = Apply(quota, change);
  s = db_->Put(Synced(), meta_cf_, key, meta::EncodeProducerQuota(quota));
  if (!s.ok()) return FromRocks(s, absl::StrCat("storing the quota of producer ", producer_id));
  return quota;
}

absl::Status LogStoreImpl::DeleteProducerQuota(int64_t producer_id) {
  if (absl::Status s = CheckProducerId(producer_id); !s.ok()) return s;
  absl::MutexLock admin(&admin_mu_);
  const std::string key = meta::ProducerQuotaKey(producer_id);
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta_cf_, key, &value);
  if (s.IsNotFound()) {
    return absl::NotFoundError(
        producer_id == kDefaultProducerQuotaId
            ? std::string("there is no default producer quota")
            : absl::StrCat("producer ", producer_id, " has no quota of its own"));
  }
  if (!s.ok()) return FromRocks(s, absl::StrCat("reading the quota of producer ", producer_id));
  return FromRocks(db_->Delete(Synced(), meta_cf_, key),
                   absl::StrCat("deleting the quota of producer ", producer_id));
}

absl::StatusOr<std::vector<ProducerQuota>> LogStoreImpl::ListProducerQuotas() const {
  std::vector<ProducerQuota> out;
  const std::string prefix(1, meta::kProducerQuotaPrefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    absl::optional<Quota> quota =
        meta::DecodeProducerQuota(absl::string_view(it->value().data(), it->value().size()));
    if (it->key().size() != 9 || !quota.has_value()) {
      return absl::DataLossError("a stored producer quota is corrupt");
    }
    // Keys are big-endian, so iteration order is producer id order (the default, 0, first).
    out.push_back({.producer_id = static_cast<int64_t>(DecodeBigEndian64(it->key().data() + 1)),
                   .quota = *quota});
  }
  if (!it->status().ok()) return FromRocks(it->status(), "reading producer quotas");
  return out;
}

}  // namespace evlog::storage
