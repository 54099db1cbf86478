// evlogd's command-line flags (defined in flags.cc, each with its --help text) and their
// conversion into ServerOptions.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "server/server_options.h"
#include "storage/options.h"

namespace evlog::server {

// Rewrites "--some-flag[=v]" arguments to "--some_flag[=v]" in place (up to a "--"
// argument), so that flags may be spelled with dashes as documented while Abseil defines them
// with underscores.
void NormalizeFlagNames(int argc, char** argv);

// The --help text: a synopsis and every evlogd flag, spelled with dashes, with its default and
// help.
std::string UsageText();

// The ServerOptions given by the parsed flags. REQUIRES: absl::ParseCommandLine has run.
// Errors: INVALID_ARGUMENT naming the flag and what it accepts.
absl::StatusOr<ServerOptions> OptionsFromFlags();

// Parses --fsync's value: "always", or "interval:MS" with MS in 1..60000.
// Errors: INVALID_ARGUMENT.
absl::Status ParseFsyncPolicy(const std::string& value, storage::Options* options);

}  // namespace evlog::server
