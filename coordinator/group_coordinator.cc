#include "coordinator/group_coordinator.h"

#include <algorithm>
#include <random>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace evlog::coordinator {

namespace {

constexpr absl::Duration kMinSessionTimeout = absl::Milliseconds(100);
constexpr absl::Duration kMaxSessionTimeout = absl::Minutes(10);

absl::Status UnknownMember(const std::string& group, const std::string& member_id) {
  return absl::FailedPreconditionError(
      absl::StrCat("member '", member_id, "' is not in group '", group,
                   "' (its session expired or it was removed); join the group again"));
}

}  // namespace

std::map<TopicPartition, std::string> AssignPartitions(
    const std::map<std::string, std::vector<std::string>>& subscriptions,
    const std::map<std::string, int32_t>& partitions,
    const std::map<TopicPartition, std::string>& current) {
  std::map<std::string, std::set<std::string>> subscribers;  // topic -> members
  for (const auto& [member, topics] : subscriptions) {
    for (const std::string& t : topics) {
      if (partitions.contains(t)) subscribers[t].insert(member);
    }
  }
  std::map<TopicPartition, std::string> assign;
  std::map<std::string, int> load;
  for (const auto& [member, topics] : subscriptions) load[member] = 0;

  // Keep every valid owner.
  std::vector<TopicPartition> unassigned;
  for (const auto& [topic, members] : subscribers) {
    for (int32_t p = 0; p < partitions.at(topic); ++p) {
      TopicPartition tp{topic, p};
      auto cur = current.find(tp);
      if (cur != current.end() && members.contains(cur->second)) {
        assign[tp] = cur->second;
        ++load[cur->second];
      } else {
        unassigned.push_back(tp);
      }
    }
  }
  // New partitions go to the least loaded subscriber.
  for (const TopicPartition& tp : unassigned) {
    const std::string* best = nullptr;
    for (const std::string& m : subscribers[tp.topic]) {
      if (best == nullptr || load[m] < load[*best]) best = &m;
    }
    assign[tp] = *best;
    ++load[*best];
  }
  // Move partitions from the most to the least loaded members until no eligible pair differs
  // by more than one: each move is needed for balance, so stickiness is kept otherwise.
  for (;;) {
    std::vector<std::string> by_load;
    for (const auto& [m, l] : load) by_load.push_back(m);
    std::stable_sort(by_load.begin(), by_load.end(),
                     [&](const std::string& a, const std::string& b) { return load[a] < load[b]; });
    bool moved = false;
    for (size_t r = 0; r < by_load.size() && !moved; ++r) {
      const std::string& receiver = by_load[r];
      for (size_t d = by_load.size(); d-- > r + 1 && !moved;) {
        const std::string& donor = by_load[d];
        if (load[donor] - load[receiver] < 2) break;
        // The donor's last partition that the receiver can take.
        for (auto it = assign.rbegin(); it != assign.rend(); ++it) {
          if (it->second == donor && subscribers[it->first.topic].contains(receiver)) {
            it->second = receiver;
            --load[donor];
            ++load[receiver];
            moved = true;
            break;
          }
        }
      }
    }
    if (!moved) break;
  }
  return assign;
}

GroupCoordinator::GroupCoordinator(storage::LogStore* store, std::function<absl::Time()> clock)
    : store_(store), clock_(std::move(clock)) {
  const absl::Time now = clock_();
  absl::MutexLock l(&mu_);
  for (const std::string& name : store_->ListGroups()) {
    Group& g = groups_[name];
    g.name = name;
    absl::StatusOr<std::string> state = store_->GetGroupState(name);
    if (!state.ok()) continue;
    nlohmann::json j = nlohmann::json::parse(*state, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || j.value("v", 0) != 1) {
      spdlog::warn("group '{}': stored state is unreadable; starting it afresh", name);
      continue;
    }
    try {
      g.generation = j.at("generation").get<int64_t>();
      g.auto_offset_reset = j.at("auto_offset_reset").get<std::string>() == "latest"
                                ? OffsetReset::kLatest
                                : OffsetReset::kEarliest;
      for (const auto& jm : j.at("members")) {
        Member m;
        m.id = jm.at("id").get<std::string>();
        m.client_id = jm.at("client_id").get<std::string>();
        m.topics = jm.at("topics").get<std::vector<std::string>>();
        m.session_timeout = absl::Milliseconds(jm.at("session_timeout_ms").get<int64_t>());
        m.last_heartbeat = now;  // sessions restart with the server
        g.members[m.id] = m;
      }
      for (const auto& jo : j.at("owners")) {
        g.owners[{jo.at(0).get<std::string>(), jo.at(1).get<int32_t>()}] =
            Owner{jo.at(2).get<std::string>(), jo.at(3).get<int64_t>()};
      }
    } catch (const nlohmann::json::exception& e) {
      spdlog::warn("group '{}': stored state is unreadable ({}); starting it afresh", name,
                   e.what());
      g = Group{.name = name};
    }
  }
  expiry_ = std::thread([this] { ExpiryLoop(); });
}

GroupCoordinator::~GroupCoordinator() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  expiry_.join();
}

GroupCoordinator::Group* GroupCoordinator::FindGroup(const std::string& name) {
  auto it = groups_.find(name);
  return it == groups_.end() ? nullptr : &it->second;
}

absl::Status GroupCoordinator::Store(const Group& g) {
  nlohmann::json members = nlohmann::json::array();
  for (const auto& [id, m] : g.members) {
    members.push_back({{"id", m.id},
                       {"client_id", m.client_id},
                       {"topics", m.topics},
                       {"session_timeout_ms", absl::ToInt64Milliseconds(m.session_timeout)}});
  }
  nlohmann::json owners = nlohmann::json::array();
  for (const auto& [tp, o] : g.owners) {
    owners.push_back({tp.topic, tp.partition, o.member_id, o.generation});
  }
  nlohmann::json j = {
      {"v", 1},
      {"generation", g.generation},
      {"auto_offset_reset", g.auto_offset_reset == OffsetReset::kLatest ? "latest" : "earliest"},
      {"members", members},
      {"owners", owners}};
  return store_->PutGroupState(g.name, j.dump());
}

absl::Status GroupCoordinator::Rebalance(Group& g, bool membership_changed) {
  std::map<std::string, std::vector<std::string>> subscriptions;
  std::map<std::string, int32_t> partitions;
  for (const auto& [id, m] : g.members) {
    subscriptions[id] = m.topics;
    for (const std::string& t : m.topics) {
      if (partitions.contains(t)) continue;
      absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(t);
      if (info.ok()) partitions[t] = info->config.partitions;  // deleted topics drop out
    }
  }
  std::map<TopicPartition, std::string> current;
  for (const auto& [tp, o] : g.owners) current[tp] = o.member_id;
  std::map<TopicPartition, std::string> next = AssignPartitions(subscriptions, partitions, current);
  if (next == current && !membership_changed) return absl::OkStatus();

  ++g.generation;
  std::map<TopicPartition, Owner> owners;
  for (const auto& [tp, member] : next) {
    auto old = g.owners.find(tp);
    owners[tp] = (old != g.owners.end() && old->second.member_id == member)
                     ? old->second
                     : Owner{member, g.generation};
  }
  g.owners = std::move(owners);
  spdlog::info("group '{}' generation {}: {} members, {} partitions", g.name, g.generation,
               g.members.size(), g.owners.size());
  return Store(g);
}

absl::StatusOr<MemberView> GroupCoordinator::View(const Group& g, const std::string& member_id) {
  MemberView view;
  view.member_id = member_id;
  view.generation = g.generation;
  absl::StatusOr<std::vector<storage::GroupOffset>> committed = store_->FetchOffsets(g.name);
  if (!committed.ok()) return committed.status();
  std::map<TopicPartition, int64_t> offsets;
  for (const storage::GroupOffset& o : *committed) offsets[{o.topic, o.partition}] = o.offset;
  std::map<std::string, storage::TopicInfo> topics;
  for (const auto& [tp, owner] : g.owners) {
    if (owner.member_id != member_id) continue;
    if (!topics.contains(tp.topic)) {
      absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(tp.topic);
      if (!info.ok()) continue;  // deleted meanwhile
      topics[tp.topic] = *std::move(info);
    }
    const std::vector<storage::PartitionInfo>& infos = topics[tp.topic].partitions;
    if (tp.partition < 0 || static_cast<size_t>(tp.partition) >= infos.size()) {
      continue;  // the topic was deleted and created again with fewer partitions meanwhile
    }
    const storage::PartitionInfo& p = infos[tp.partition];
    PartitionStart start{.tp = tp, .assigned_generation = owner.generation};
    auto c = offsets.find(tp);
    if (c != offsets.end()) {
      start.committed = true;
      start.offset = c->second;
      if (c->second < p.start_offset) {
        start.trimmed = true;
        start.offset = p.start_offset;
      }
    } else {
      start.offset = g.auto_offset_reset == OffsetReset::kLatest ? p.end_offset : p.start_offset;
    }
    view.assignment.push_back(start);
  }
  return view;
}

absl::StatusOr<MemberView> GroupCoordinator::Join(const JoinRequest& req) {
  if (!storage::IsValidTopicName(req.group)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid group name '", req.group, "': use 1 to 249 characters from [A-Za-z0-9._-]"));
  }
  if (req.topics.empty()) {
    return absl::InvalidArgumentError("a member must subscribe to at least one topic");
  }
  if (req.session_timeout < kMinSessionTimeout || req.session_timeout > kMaxSessionTimeout) {
    return absl::InvalidArgumentError(absl::StrCat("session timeout ",
                                                   absl::FormatDuration(req.session_timeout),
                                                   " is outside the allowed 100ms to 10m"));
  }
  for (const std::string& t : req.topics) {
    absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(t);
    if (!info.ok()) return info.status();
  }
  std::vector<std::string> topics = req.topics;
  std::sort(topics.begin(), topics.end());
  topics.erase(std::unique(topics.begin(), topics.end()), topics.end());

  const absl::Time now = clock_();
  absl::MutexLock l(&mu_);
  ExpireLocked(now);
  if (!req.member_id.empty()) {
    // Checked before the group is looked up, so that a stale rejoin does not create an empty
    // in-memory group (which ListGroups would show until the next restart).
    Group* existing = FindGroup(req.group);
    if (existing == nullptr || !existing->members.contains(req.member_id)) {
      return UnknownMember(req.group, req.member_id);
    }
  }
  Group& g = groups_[req.group];
  if (g.name.empty()) {
    g.name = req.group;
    g.auto_offset_reset = req.auto_offset_reset;
  }
  bool changed = false;
  std::string id = req.member_id;
  if (!id.empty()) {
    auto it = g.members.find(id);  // present: checked above
    changed = it->second.topics != topics;
    it->second.topics = topics;
    it->second.session_timeout = req.session_timeout;
    it->second.last_heartbeat = now;
  } else {
    // Random, so ids stay unique across server restarts.
    std::random_device rd;
    const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ ++member_counter_;
    id = absl::StrCat(req.client_id.empty() ? "member" : req.client_id, "-", absl::Hex(r));
    g.members[id] = Member{id, req.client_id, topics, req.session_timeout, now};
    changed = true;
  }
  absl::Status s = Rebalance(g, changed);
  if (!s.ok()) return s;
  return View(g, id);
}

absl::StatusOr<MemberView> GroupCoordinator::Heartbeat(const std::string& group,
                                                       const std::string& member_id) {
  const absl::Time now = clock_();
  absl::MutexLock l(&mu_);
  ExpireLocked(now);
  Group* g = FindGroup(group);
  if (g == nullptr || !g->members.contains(member_id)) return UnknownMember(group, member_id);
  g->members[member_id].last_heartbeat = now;
  // Topics created or deleted since the last change are picked up here.
  absl::Status s = Rebalance(*g, false);
  if (!s.ok()) return s;
  return View(*g, member_id);
}

absl::Status GroupCoordinator::Leave(const std::string& group, const std::string& member_id) {
  absl::MutexLock l(&mu_);
  Group* g = FindGroup(group);
  if (g == nullptr || g->members.erase(member_id) == 0) return UnknownMember(group, member_id);
  return Rebalance(*g, true);
}

absl::Status GroupCoordinator::Commit(const std::string& group, const std::string& member_id,
                                      int64_t generation, const std::string& topic,
                                      const std::vector<std::pair<int32_t, int64_t>>& offsets) {
  // A topic or partition that does not exist is the caller's error, not a lost ownership.
  absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(topic);
  if (!info.ok()) return info.status();
  for (const auto& [partition, offset] : offsets) {
    if (partition < 0 || partition >= info->config.partitions) {
      return absl::OutOfRangeError(absl::StrCat("topic '", topic, "' has no partition ", partition,
                                                ": valid partitions are 0 to ",
                                                info->config.partitions - 1));
    }
  }
  const absl::Time now = clock_();
  absl::MutexLock l(&mu_);
  ExpireLocked(now);
  Group* g = FindGroup(group);
  if (g == nullptr || !g->members.contains(member_id)) return UnknownMember(group, member_id);
  for (const auto& [partition, offset] : offsets) {
    auto owner = g->owners.find({topic, partition});
    if (owner == g->owners.end() || owner->second.member_id != member_id) {
      return absl::FailedPreconditionError(absl::StrCat(
          "member '", member_id, "' does not own topic '", topic, "' partition ", partition,
          " in generation ", g->generation, "; it was reassigned: stop reading it"));
    }
    if (generation < owner->second.generation) {
      return absl::FailedPreconditionError(absl::StrCat(
          "stale generation ", generation, ": topic '", topic, "' partition ", partition,
          " was assigned to this member in generation ", owner->second.generation));
    }
  }
  g->members[member_id].last_heartbeat = now;
  return store_->CommitOffsets(group, topic, offsets);
}

std::vector<std::string> GroupCoordinator::ListGroups() {
  std::set<std::string> names;
  for (const std::string& n : store_->ListGroups()) names.insert(n);
  absl::MutexLock l(&mu_);
  for (const auto& [name, g] : groups_) names.insert(name);
  return std::vector<std::string>(names.begin(), names.end());
}

absl::StatusOr<GroupDescription> GroupCoordinator::Describe(const std::string& group) {
  absl::StatusOr<std::vector<storage::GroupOffset>> committed = store_->FetchOffsets(group);
  if (!committed.ok()) return committed.status();
  absl::MutexLock l(&mu_);
  ExpireLocked(clock_());
  Group* g = FindGroup(group);
  if (g == nullptr && committed->empty()) {
    return absl::NotFoundError(absl::StrCat("group '", group, "' does not exist"));
  }
  GroupDescription d;
  d.group = group;
  std::map<TopicPartition, PartitionDescription> parts;
  std::set<std::string> topics;
  if (g != nullptr) {
    d.generation = g->generation;
    d.auto_offset_reset = g->auto_offset_reset;
    for (const auto& [id, m] : g->members) {
      MemberDescription md{m.id, m.client_id, m.topics, {}, m.last_heartbeat};
      for (const auto& [tp, o] : g->owners) {
        if (o.member_id == id) md.assignment.push_back(tp);
      }
      d.members.push_back(std::move(md));
      topics.insert(m.topics.begin(), m.topics.end());
    }
    for (const auto& [tp, o] : g->owners) parts[tp].owner = o.member_id;
  }
  for (const storage::GroupOffset& o : *committed) {
    PartitionDescription& p = parts[{o.topic, o.partition}];
    p.committed = o.offset;
    p.commit_time_ms = o.commit_time_ms;
    topics.insert(o.topic);
  }
  for (const std::string& t : topics) {
    absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(t);
    if (!info.ok()) continue;
    for (const storage::PartitionInfo& pi : info->partitions) {
      TopicPartition tp{t, pi.partition};
      // Topics the group only subscribes to show all partitions; committed-only topics too.
      PartitionDescription& p = parts[tp];
      p.tp = tp;
      p.start_offset = pi.start_offset;
      p.end_offset = pi.end_offset;
      p.lag = pi.end_offset -
              (p.committed >= 0 ? std::max(p.committed, pi.start_offset) : pi.start_offset);
    }
  }
  for (auto& [tp, p] : parts) {
    if (p.tp.topic.empty()) continue;  // topic deleted
    d.partitions.push_back(std::move(p));
  }
  return d;
}

absl::StatusOr<std::vector<std::pair<int32_t, int64_t>>> GroupCoordinator::ResetOffsets(
    const std::string& group, const std::string& topic, int32_t partition, const ResetSpec& spec,
    bool force) {
  if (!storage::IsValidTopicName(group)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid group name '", group, "'"));
  }
  absl::StatusOr<storage::TopicInfo> info = store_->DescribeTopic(topic);
  if (!info.ok()) return info.status();
  if (partition >= info->config.partitions) {
    return absl::OutOfRangeError(absl::StrCat("topic '", topic, "' has no partition ", partition,
                                              ": valid partitions are 0 to ",
                                              info->config.partitions - 1));
  }
  absl::MutexLock l(&mu_);
  ExpireLocked(clock_());
  Group* g = FindGroup(group);
  const bool live = g != nullptr && !g->members.empty();
  if (live && !force) {
    return absl::FailedPreconditionError(absl::StrCat(
        "group '", group, "' has ", g->members.size(),
        " live members; stop its consumers first, or force the reset (they then rejoin and "
        "read from the new offsets)"));
  }
  // Every target is computed (and may fail) before a forced reset removes anyone, so that a
  // refused reset leaves the group as it was. Members cannot commit meanwhile: mu_ is held.
  absl::StatusOr<std::vector<storage::GroupOffset>> committed = store_->FetchOffsets(group);
  if (!committed.ok()) return committed.status();
  std::map<int32_t, int64_t> current;
  for (const auto& o : *committed) {
    if (o.topic == topic) current[o.partition] = o.offset;
  }
  std::vector<std::pair<int32_t, int64_t>> offsets;
  for (const storage::PartitionInfo& p : info->partitions) {
    if (partition >= 0 && p.partition != partition) continue;
    int64_t target = 0;
    switch (spec.kind) {
      case ResetSpec::kToOffset:
        if (spec.value < p.start_offset || spec.value > p.end_offset) {
          return absl::OutOfRangeError(absl::StrCat("offset ", spec.value, " is outside partition ",
                                                    p.partition, "'s range [", p.start_offset, ", ",
                                                    p.end_offset, "]"));
        }
        target = spec.value;
        break;
      case ResetSpec::kToEarliest:
        target = p.start_offset;
        break;
      case ResetSpec::kToLatest:
        target = p.end_offset;
        break;
      case ResetSpec::kToTime: {
        absl::StatusOr<int64_t> at = store_->OffsetForTimestamp(topic, p.partition, spec.value);
        if (!at.ok()) return at.status();
        target = *at;
        break;
      }
      case ResetSpec::kShiftBy: {
        auto c = current.find(p.partition);
        const int64_t base = c != current.end() ? c->second : p.start_offset;
        // Bounded first, so that base + shift cannot overflow for absurd shifts.
        const int64_t shift =
            std::clamp<int64_t>(spec.value, -(int64_t{1} << 62), int64_t{1} << 62);
        target = std::clamp(base + shift, p.start_offset, p.end_offset);
        break;
      }
    }
    offsets.emplace_back(p.partition, target);
  }
  if (live) {
    g->members.clear();
    absl::Status s = Rebalance(*g, true);
    if (!s.ok()) return s;
  }
  absl::Status s = store_->CommitOffsets(group, topic, offsets);
  if (!s.ok()) return s;
  if (g == nullptr) groups_[group].name = group;
  return offsets;
}

absl::Status GroupCoordinator::DeleteGroup(const std::string& group, bool force) {
  absl::MutexLock l(&mu_);
  ExpireLocked(clock_());
  Group* g = FindGroup(group);
  if (g != nullptr && !g->members.empty() && !force) {
    return absl::FailedPreconditionError(
        absl::StrCat("group '", group, "' has ", g->members.size(),
                     " live members; stop its consumers first, or force the deletion"));
  }
  absl::Status s = store_->DeleteGroup(group);
  if (absl::IsNotFound(s) && g != nullptr) s = absl::OkStatus();  // never stored anything
  if (s.ok()) groups_.erase(group);
  return s;
}

void GroupCoordinator::ExpireLocked(absl::Time now) {
  for (auto& [name, g] : groups_) {
    std::vector<std::string> expired;
    for (const auto& [id, m] : g.members) {
      if (now - m.last_heartbeat > m.session_timeout) expired.push_back(id);
    }
    if (expired.empty()) continue;
    for (const std::string& id : expired) g.members.erase(id);
    spdlog::info("group '{}': members {} missed their session timeout", name,
                 absl::StrJoin(expired, ", "));
    absl::Status s = Rebalance(g, true);
    if (!s.ok()) spdlog::warn("group '{}': storing the rebalance failed: {}", name, s.ToString());
  }
}

void GroupCoordinator::ExpireMembers() {
  absl::MutexLock l(&mu_);
  ExpireLocked(clock_());
}

void GroupCoordinator::ExpiryLoop() {
  absl::MutexLock l(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), absl::Milliseconds(100))) {
    ExpireLocked(clock_());
  }
}

}  // namespace evlog::coordinator
