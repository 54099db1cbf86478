// The `evlog` commands: each takes a parsed Invocation, talks to the server and returns the
// process exit status (kExitOk or kExitFailure; usage errors never reach here).
//
// Output: command results go to stdout; errors go to stderr as
//   evlog: STATUS_NAME: sentence
// where STATUS_NAME is the gRPC status code's name (NOT_FOUND, OUT_OF_RANGE, UNAVAILABLE ...).
//
// Thread safety: each function is called once per process, from main.
#pragma once

#include <cstddef>
#include <functional>

#include "absl/status/status.h"
#include "client/cli/args.h"

namespace evlog::cli {

int RunTopicCreate(const Invocation& inv);
int RunTopicList(const Invocation& inv);
int RunTopicDescribe(const Invocation& inv);
int RunTopicDelete(const Invocation& inv);
int RunProduce(const Invocation& inv);
int RunReplay(const Invocation& inv);
int RunConsume(const Invocation& inv);
int RunGroupList(const Invocation& inv);
int RunGroupDescribe(const Invocation& inv);
int RunGroupReset(const Invocation& inv);
int RunGroupDelete(const Invocation& inv);
int RunHealth(const Invocation& inv);

// Reads standard input with read(2) and calls `line(data, size)` for every line (without its
// '\n'; a last line without one included), in order, until EOF, until `line` returns false,
// or until `stop` (if not null) becomes non-zero between reads. read(2), not fread: it returns
// whatever is available, so lines from a slow source (`tail -f log | evlog produce t`) go out
// at once, while a fast pipe still fills large reads.
// Returns OK, or DATA_LOSS if standard input cannot be read.
absl::Status ForEachStdinLine(const std::function<bool(const char* data, size_t size)>& line,
                              const volatile int* stop = nullptr);

// Prints `evlog: STATUS_NAME: message` to stderr.
void PrintError(const absl::Status& status);

// Dispatches to the Run* function of inv.command (kHelp prints the help text).
int Run(const Invocation& inv);

}  // namespace evlog::cli
