// evlog: the command line of the evlog event-log service. See args.h for the grammar and
// DESIGN.md ("The command line, as users script it") for the contract.
#include <string>
#include <vector>

#include "client/cli/args.h"
#include "client/cli/commands.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<evlog::cli::Invocation> inv = evlog::cli::ParseCommandLine(args);
  if (!inv.ok()) {
    evlog::cli::PrintError(inv.status());
    return evlog::cli::kExitUsage;
  }
  return evlog::cli::Run(*inv);
}
