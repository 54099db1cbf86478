// The `evlog` commands: each takes a parsed Invocation, talks to the server and returns the
// process exit status (kExitOk or kExitFailure; usage errors never reach here).
//
// Output: command results go to stdout; errors go to stderr as
//   evlog: STATUS_NAME: sentence
// where STATUS_NAME is the gRPC status code's name (NOT_FOUND, OUT_OF_RANGE, UNAVAILABLE ...).
//
// Thread safety: each function is called once per process, from main.
#pragma once

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

// Prints `evlog: STATUS_NAME: message` to stderr.
void PrintError(const absl::Status& status);

// Dispatches to the Run* function of inv.command (kHelp prints the help text).
int Run(const Invocation& inv);

}  // namespace evlog::cli
