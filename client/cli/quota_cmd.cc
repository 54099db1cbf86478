// The quota commands of `evlog` (see quota_cmd.h): help texts, flag parsing and the calls to
// AdminService.
#include "client/cli/quota_cmd.h"

#include <iostream>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/admin.h"
#include "client/cli/commands.h"
#include "common/byte_size.h"
#include "nlohmann/json.hpp"

namespace evlog::cli {

const absl::string_view kTopicAlterHelp =
    R"(Usage: evlog topic alter NAME [--max-bytes-per-sec=SIZE|0] [--max-records-per-sec=N|0]

Changes topic NAME's rate quota (for now the quota is all `topic alter` can change). A rate not
given keeps its value; 0 removes that limit. The change is stored durably and applies to the
next produce request; producers over the quota get RESOURCE_EXHAUSTED with a retry hint, and
the client library waits that long and retries, so they slow down to the quota.
  --max-bytes-per-sec=SIZE   bytes of records (key + value + headers) per second over all the
                             topic's partitions: 1048576, 512KiB, 10MiB, 1GiB, 500KB; 0: no limit
  --max-records-per-sec=N    records per second; 0: no limit
A quota admits bursts of up to one second's worth after a quiet second.
Prints the topic's new quota. Fails with NOT_FOUND if there is no such topic.
)";

const absl::string_view kQuotaSetHelp =
    R"(Usage: evlog quota set (--producer-id=N | --default-producer) [--bytes-per-sec=SIZE]
                       [--records-per-sec=N]

Sets the rate quota of one idempotent producer (its producer id, as the server gave it at
InitProducer), over all topics and on top of the topics' quotas; or, with --default-producer,
the quota every producer id without its own gets (each producer its own bucket). Requests that
are not idempotent (producer id 0) answer to topic quotas only. A rate not given keeps its value
(unlimited for a new entry); 0 removes that limit, and a producer's own 0/0 quota exempts it
from the default. Stored durably; applies to the next produce request.
  --producer-id=N          the producer (N > 0)
  --default-producer       the default producer quota instead
  --bytes-per-sec=SIZE     1048576, 512KiB, 10MiB, 1GiB, 500KB; 0: no limit
  --records-per-sec=N      0: no limit
Prints the quota now in force.
)";

const absl::string_view kQuotaDeleteHelp =
    R"(Usage: evlog quota delete (--producer-id=N | --default-producer)

Removes a producer's own quota (it then answers to the default producer quota, if any), or the
default producer quota. Fails with NOT_FOUND if none is set.
)";

const absl::string_view kQuotaListHelp = R"(Usage: evlog quota list [--json]

Prints every quota in force: topics with a quota, the default producer quota and producers with
their own. With --json prints one JSON object:
  {"topics":[{"topic":"t","bytes_per_sec":B,"records_per_sec":R}],
   "default_producer":{"bytes_per_sec":B,"records_per_sec":R} (or null),
   "producers":[{"producer_id":7,"bytes_per_sec":B,"records_per_sec":R}]}
where 0 means unlimited.
)";

const absl::string_view kQuotaGroupHelp =
    R"(Usage: evlog quota (set|delete|list) ...

  quota set (--producer-id=N | --default-producer) [--bytes-per-sec=SIZE] [--records-per-sec=N]
  quota delete (--producer-id=N | --default-producer)
  quota list [--json]
Topic quotas are set with `evlog topic create ... --max-bytes-per-sec=SIZE
--max-records-per-sec=N` and `evlog topic alter`.
Run `evlog quota COMMAND --help` for details.
)";

namespace {

absl::StatusOr<int64_t> ParseRecordRate(absl::string_view flag, absl::string_view text) {
  int64_t n = 0;
  if (!absl::SimpleAtoi(text, &n) || n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, "=", text,
                     " is not a rate: give a whole number of records per second >= 0 "
                     "(0: unlimited)"));
  }
  return n;
}

std::string FormatBinary(int64_t bytes) {
  constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  std::string best;
  int64_t unit = 1024;
  for (const char* name : kUnits) {
    if (bytes < unit) break;
    best = absl::StrFormat("%.3g %s", static_cast<double>(bytes) / static_cast<double>(unit), name);
    if (unit > INT64_MAX / 1024) break;
    unit *= 1024;
  }
  return best;
}

nlohmann::ordered_json QuotaJson(const client::Quota& q) {
  nlohmann::ordered_json j;
  j["bytes_per_sec"] = q.bytes_per_sec;
  j["records_per_sec"] = q.records_per_sec;
  return j;
}

client::QuotaChange ToChange(const QuotaArgs& args) {
  return {.bytes_per_sec = args.bytes_per_sec, .records_per_sec = args.records_per_sec};
}

int64_t ProducerTarget(const QuotaArgs& args) {
  return args.default_producer ? client::kDefaultProducerQuota : args.producer_id;
}

std::string TargetName(const QuotaArgs& args) {
  return args.default_producer ? std::string("default producer quota")
                               : absl::StrCat("producer ", args.producer_id);
}

std::unique_ptr<client::Admin> MakeQuotaAdmin(const Invocation& inv) {
  return client::Admin::Create(inv.server, {.timeout = inv.timeout});
}

void PrintQuota(absl::string_view what, const client::Quota& q) {
  std::cout << what << ": " << FormatByteRate(q.bytes_per_sec) << ", "
            << FormatRecordRate(q.records_per_sec) << std::endl;
}

}  // namespace

std::string FormatByteRate(int64_t bytes_per_sec) {
  if (bytes_per_sec <= 0) return "unlimited bytes/s";
  const std::string binary = FormatBinary(bytes_per_sec);
  return binary.empty() ? absl::StrCat(bytes_per_sec, " bytes/s")
                        : absl::StrCat(bytes_per_sec, " bytes/s (", binary, "/s)");
}

std::string FormatRecordRate(int64_t records_per_sec) {
  if (records_per_sec <= 0) return "unlimited records/s";
  return absl::StrCat(records_per_sec, " records/s");
}

absl::StatusOr<int64_t> ParseByteRate(absl::string_view flag, absl::string_view text) {
  return ParseByteSize(flag, text);  // a rate in bytes/s is written like a size; 0 = unlimited
}

absl::Status ParseQuotaFlags(Command command, const std::map<std::string, std::string>& flags,
                             Invocation& inv) {
  auto get = [&flags](absl::string_view name) -> const std::string* {
    auto it = flags.find(std::string(name));
    return it == flags.end() ? nullptr : &it->second;
  };
  QuotaArgs& q = inv.quota;
  switch (command) {
    case Command::kTopicCreate:
    case Command::kTopicAlter: {
      if (const std::string* v = get("max-bytes-per-sec")) {
        absl::StatusOr<int64_t> n = ParseByteRate("max-bytes-per-sec", *v);
        if (!n.ok()) return n.status();
        q.bytes_per_sec = *n;
      }
      if (const std::string* v = get("max-records-per-sec")) {
        absl::StatusOr<int64_t> n = ParseRecordRate("max-records-per-sec", *v);
        if (!n.ok()) return n.status();
        q.records_per_sec = *n;
      }
      if (command == Command::kTopicAlter && !q.bytes_per_sec && !q.records_per_sec) {
        return absl::InvalidArgumentError(
            "`evlog topic alter` needs --max-bytes-per-sec=SIZE and/or --max-records-per-sec=N "
            "(0 removes a limit)");
      }
      return absl::OkStatus();
    }
    case Command::kQuotaSet:
    case Command::kQuotaDelete: {
      const std::string* id = get("producer-id");
      q.default_producer = get("default-producer") != nullptr;
      if ((id != nullptr) == q.default_producer) {
        return absl::InvalidArgumentError(
            "give exactly one of --producer-id=N and --default-producer");
      }
      if (id != nullptr && (!absl::SimpleAtoi(*id, &q.producer_id) || q.producer_id <= 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--producer-id=", *id, " is not a producer id: give a whole number > 0"));
      }
      if (command == Command::kQuotaDelete) return absl::OkStatus();
      if (const std::string* v = get("bytes-per-sec")) {
        absl::StatusOr<int64_t> n = ParseByteRate("bytes-per-sec", *v);
        if (!n.ok()) return n.status();
        q.bytes_per_sec = *n;
      }
      if (const std::string* v = get("records-per-sec")) {
        absl::StatusOr<int64_t> n = ParseRecordRate("records-per-sec", *v);
        if (!n.ok()) return n.status();
        q.records_per_sec = *n;
      }
      if (!q.bytes_per_sec && !q.records_per_sec) {
        return absl::InvalidArgumentError(
            "`evlog quota set` needs --bytes-per-sec=SIZE and/or --records-per-sec=N (0 removes "
            "a limit)");
      }
      return absl::OkStatus();
    }
    default:
      return absl::OkStatus();
  }
}

int RunTopicAlter(const Invocation& inv) {
  absl::StatusOr<client::TopicDescription> topic =
      MakeQuotaAdmin(inv)->AlterTopicQuota(inv.topic, ToChange(inv.quota));
  if (!topic.ok()) {
    PrintError(topic.status());
    return kExitFailure;
  }
  PrintQuota(absl::StrCat("topic ", inv.topic, " quota"), topic->quota);
  return kExitOk;
}

int RunQuotaSet(const Invocation& inv) {
  absl::StatusOr<client::Quota> quota =
      MakeQuotaAdmin(inv)->SetProducerQuota(ProducerTarget(inv.quota), ToChange(inv.quota));
  if (!quota.ok()) {
    PrintError(quota.status());
    return kExitFailure;
  }
  PrintQuota(TargetName(inv.quota), *quota);
  return kExitOk;
}

int RunQuotaDelete(const Invocation& inv) {
  absl::Status s = MakeQuotaAdmin(inv)->DeleteProducerQuota(ProducerTarget(inv.quota));
  if (!s.ok()) {
    PrintError(s);
    return kExitFailure;
  }
  std::cout << "deleted " << TargetName(inv.quota) << std::endl;
  return kExitOk;
}

int RunQuotaList(const Invocation& inv) {
  absl::StatusOr<client::QuotaList> list = MakeQuotaAdmin(inv)->ListQuotas();
  if (!list.ok()) {
    PrintError(list.status());
    return kExitFailure;
  }
  if (inv.json) {
    nlohmann::ordered_json j;
    j["topics"] = nlohmann::ordered_json::array();
    for (const auto& [topic, q] : list->topics) {
      nlohmann::ordered_json t;
      t["topic"] = topic;
      t.update(QuotaJson(q));
      j["topics"].push_back(std::move(t));
    }
    j["default_producer"] = list->default_producer_quota.has_value()
                                ? QuotaJson(*list->default_producer_quota)
                                : nlohmann::ordered_json();
    j["producers"] = nlohmann::ordered_json::array();
    for (const auto& [id, q] : list->producers) {
      nlohmann::ordered_json p;
      p["producer_id"] = id;
      p.update(QuotaJson(q));
      j["producers"].push_back(std::move(p));
    }
    std::cout << j.dump() << std::endl;
    return kExitOk;
  }
  std::cout << absl::StrFormat("%-9s %-30s %16s %16s\n", "KIND", "NAME", "BYTES/S", "RECORDS/S");
  auto rate = [](int64_t v) { return v > 0 ? absl::StrCat(v) : std::string("unlimited"); };
  auto line = [&](absl::string_view kind, absl::string_view name, const client::Quota& q) {
    std::cout << absl::StrFormat("%-9s %-30s %16s %16s\n", kind, name, rate(q.bytes_per_sec),
                                 rate(q.records_per_sec));
  };
  for (const auto& [topic, q] : list->topics) line("topic", topic, q);
  if (list->default_producer_quota.has_value()) {
    line("producer", "(default)", *list->default_producer_quota);
  }
  for (const auto& [id, q] : list->producers) line("producer", absl::StrCat(id), q);
  std::cout.flush();
  return kExitOk;
}

}  // namespace evlog::cli
