// How `evlog group describe` and `evlog group reset` print their results: a table for people
// and one JSON object for scripts (the --json forms are documented in the commands' --help).
// Pure functions, unit-tested in group_format_test.cc.
//
// Thread safety: free functions without shared state.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "client/group_admin.h"

namespace evlog::cli {

// The human form of a group: a header (group, generation, auto offset reset, member count),
// the members, and one row per partition with COMMITTED ("-" if none), END, LAG, OWNER ("-" if
// none) and LAST COMMIT (UTC, "-" if never). Ends with a newline.
std::string FormatGroupTable(const client::GroupInfo& group);

// The --json form of a group, one line without a trailing newline.
std::string FormatGroupJson(const client::GroupInfo& group);

// The result of a reset: one row per partition, or (json) one object
// {"group":...,"topic":...,"offsets":[{"partition":0,"offset":5},...]}.
std::string FormatResetResult(const std::string& group, const std::string& topic,
                              const std::vector<std::pair<int32_t, int64_t>>& offsets, bool json);

// ms since the epoch as 2024-05-01T12:00:00.123Z.
std::string FormatTimeMs(int64_t ms);

}  // namespace evlog::cli
