#include "client/cli/group_format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace evlog::cli {
namespace {

// A text table: columns padded to their widest cell; numbers right-aligned.
class Table {
 public:
  explicit Table(std::vector<std::pair<std::string, bool>> header)  // name, right-aligned
      : right_(header.size()) {
    std::vector<std::string> names;
    for (size_t i = 0; i < header.size(); ++i) {
      names.push_back(header[i].first);
      right_[i] = header[i].second;
    }
    rows_.push_back(std::move(names));
  }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  std::string Render() const {
    std::vector<size_t> width(right_.size(), 0);
    for (const auto& row : rows_) {
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        const std::string pad(width[i] - row[i].size(), ' ');
        if (i > 0) line += "  ";
        line += right_[i] ? pad + row[i] : row[i] + (i + 1 < row.size() ? pad : "");
      }
      absl::StrAppend(&out, line, "\n");
    }
    return out;
  }

 private:
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

const char* ResetName(client::OffsetReset r) {
  return r == client::OffsetReset::kLatest ? "latest" : "earliest";
}

}  // namespace

std::string FormatTimeMs(int64_t ms) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMillis(ms), absl::UTCTimeZone());
}

std::string FormatGroupTable(const client::GroupInfo& group) {
  std::string out = absl::StrCat("group:              ", group.group, "\n",
                                 "generation:         ", group.generation, "\n",
                                 "auto offset reset:  ", ResetName(group.auto_offset_reset), "\n",
                                 "members:            ", group.members.size(), "\n");
  if (!group.members.empty()) {
    Table members(
        {{"MEMBER", false}, {"CLIENT", false}, {"LAST HEARTBEAT", false}, {"PARTITIONS", false}});
    for (const client::GroupMemberInfo& m : group.members) {
      std::vector<std::string> parts;
      for (const client::TopicPartition& tp : m.assignment) {
        parts.push_back(absl::StrCat(tp.topic, ":", tp.partition));
      }
      members.Add({m.member_id, OrDash(m.client_id),
                   m.last_heartbeat_ms > 0 ? FormatTimeMs(m.last_heartbeat_ms) : "-",
                   parts.empty() ? "-" : absl::StrJoin(parts, ",")});
    }
    absl::StrAppend(&out, "\n", members.Render());
  }
  Table partitions({{"TOPIC", false},
                    {"PARTITION", true},
                    {"COMMITTED", true},
                    {"END", true},
                    {"LAG", true},
                    {"OWNER", false},
                    {"LAST COMMIT", false}});
  int64_t total_lag = 0;
  for (const client::GroupPartitionInfo& p : group.partitions) {
    total_lag += p.lag;
    partitions.Add({p.tp.topic, absl::StrCat(p.tp.partition),
                    p.committed_offset >= 0 ? absl::StrCat(p.committed_offset) : "-",
                    absl::StrCat(p.end_offset), absl::StrCat(p.lag), OrDash(p.owner),
                    p.commit_time_ms > 0 ? FormatTimeMs(p.commit_time_ms) : "-"});
  }
  absl::StrAppend(&out, "\n", partitions.Render());
  absl::StrAppend(&out, "\ntotal lag: ", total_lag, "\n");
  return out;
}

std::string FormatGroupJson(const client::GroupInfo& group) {
  nlohmann::ordered_json j;
  j["group"] = group.group;
  j["generation"] = group.generation;
  j["auto_offset_reset"] = ResetName(group.auto_offset_reset);
  nlohmann::ordered_json members = nlohmann::ordered_json::array();
  for (const client::GroupMemberInfo& m : group.members) {
    nlohmann::ordered_json mj;
    mj["member_id"] = m.member_id;
    mj["client_id"] = m.client_id;
    mj["topics"] = m.topics;
    nlohmann::ordered_json assignment = nlohmann::ordered_json::array();
    for (const client::TopicPartition& tp : m.assignment) {
      nlohmann::ordered_json a;
      a["topic"] = tp.topic;
      a["partition"] = tp.partition;
      assignment.push_back(std::move(a));
    }
    mj["assignment"] = std::move(assignment);
    mj["last_heartbeat_ms"] = m.last_heartbeat_ms;
    members.push_back(std::move(mj));
  }
  j["members"] = std::move(members);
  nlohmann::ordered_json partitions = nlohmann::ordered_json::array();
  for (const client::GroupPartitionInfo& p : group.partitions) {
    nlohmann::ordered_json pj;
    pj["topic"] = p.tp.topic;
    pj["partition"] = p.tp.partition;
    pj["owner"] = p.owner;
    pj["committed_offset"] = p.committed_offset;
    pj["commit_time_ms"] = p.commit_time_ms;
    pj["start_offset"] = p.start_offset;
    pj["end_offset"] = p.end_offset;
    pj["lag"] = p.lag;
    partitions.push_back(std::move(pj));
  }
  j["partitions"] = std::move(partitions);
  return j.dump();
}

std::string FormatResetResult(const std::string& group, const std::string& topic,
                              const std::vector<std::pair<int32_t, int64_t>>& offsets, bool json) {
  if (json) {
    nlohmann::ordered_json j;
    j["group"] = group;
    j["topic"] = topic;
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& [partition, offset] : offsets) {
      nlohmann::ordered_json o;
      o["partition"] = partition;
      o["offset"] = offset;
      list.push_back(std::move(o));
    }
    j["offsets"] = std::move(list);
    return j.dump() + "\n";
  }
  Table table({{"TOPIC", false}, {"PARTITION", true}, {"NEW OFFSET", true}});
  for (const auto& [partition, offset] : offsets) {
    table.Add({topic, absl::StrCat(partition), absl::StrCat(offset)});
  }
  return absl::StrCat("reset group ", group, " on topic ", topic, ":\n", table.Render());
}

}  // namespace evlog::cli
