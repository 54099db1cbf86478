// The cross-process test harness: run a real evlogd (or any evlog binary) from a test, and
// always clean up after it.
//
//   TempDir           a fresh directory under $TMPDIR (or /tmp), removed with its contents.
//   BinaryPath(name)  where the build put a binary (EVLOG_BIN_DIR, e.g. build/bin/evlogd).
//   ServerProcess     an evlogd on 127.0.0.1 with a free port and its own data directory:
//                     Start, address, Terminate (SIGTERM), Kill (SIGKILL), Restart on the same
//                     data directory. Its destructor kills a running server and removes the
//                     directories it created. The server also dies if the thread that started
//                     it exits (PR_SET_PDEATHSIG), so start and restart servers from the test's
//                     main thread (or one that outlives them), never from a short-lived one.
//   RunCommand        runs a command with given stdin, capturing stdout, stderr and the exit
//                     status, with a deadline (for CLI tests).
//
// Example:
//   auto server = evlog::testing::ServerProcess::Start();
//   ASSERT_TRUE(server.ok()) << server.status();
//   auto channel = grpc::CreateChannel((*server)->address(),
//                                      grpc::InsecureChannelCredentials());
//   ...
//   auto exit = (*server)->Terminate();   // SIGTERM; exit status, once it exited
//   ASSERT_TRUE((*server)->Restart().ok());  // same data, new port
//
// Thread safety: a ServerProcess is used from one thread at a time; address() may be read
// concurrently while no Restart runs. Distinct objects are independent.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace evlog::testing {

// A directory created empty and removed recursively on destruction (unless released).
class TempDir {
 public:
  // Creates $TMPDIR/<prefix>-XXXXXX (TMPDIR defaults to /tmp). Aborts the test binary if it
  // cannot (a broken /tmp leaves nothing to test).
  explicit TempDir(absl::string_view prefix = "evlog-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The path of binary `name` in the build's binary directory (EVLOG_BIN_DIR).
std::string BinaryPath(absl::string_view name);

struct ServerProcessOptions {
  // Flags added after --listen and --data-dir, e.g. {"--fsync=interval:50"}.
  std::vector<std::string> extra_flags;
  // Data directory to use; empty: a fresh TempDir owned (and removed) by the ServerProcess.
  std::string data_dir;
  // How long to wait for the `evlogd listening on HOST:PORT` line.
  absl::Duration start_timeout = absl::Seconds(30);
  // The binary to run.
  std::string binary = BinaryPath("evlogd");
};

class ServerProcess {
 public:
  // Starts evlogd with --listen=127.0.0.1:0, the data directory and the extra flags, and
  // waits for its ready line. Its stderr goes to a log file (log_path()).
  // Errors: DEADLINE_EXCEEDED if no ready line came in time (the process is killed);
  // UNAVAILABLE if it exited first (the message has the log's tail); INTERNAL for fork/exec.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(ServerProcessOptions options = {});

  // Kills the server if it runs (SIGKILL) and removes the directories it created.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // "127.0.0.1:PORT" of the current run.
  const std::string& address() const { return address_; }
  const std::string& data_dir() const { return data_dir_; }
  // The log file of the current run (evlogd's stderr).
  const std::string& log_path() const { return log_path_; }
  // The process id of the current run, or -1 when not running.
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Sends SIGTERM and waits up to `timeout` for the process to exit. Returns its exit status
  // (0..255), or 128+signal if a signal ended it. Errors: DEADLINE_EXCEEDED if it did not exit
  // in time (it is then SIGKILLed); FAILED_PRECONDITION if not running.
  absl::StatusOr<int> Terminate(absl::Duration timeout = absl::Seconds(30));

  // Sends SIGKILL and reaps the process. No-op if not running.
  void Kill();

  // Waits up to `timeout` for the process to exit on its own; returns its status as
  // Terminate does. Errors: DEADLINE_EXCEEDED (still running), FAILED_PRECONDITION.
  absl::StatusOr<int> WaitForExit(absl::Duration timeout);

  // Starts the server again on the same data directory and flags (a new port), as Start does.
  // REQUIRES: !running().
  absl::Status Restart();

  // The last `max_bytes` of the current run's log.
  std::string LogTail(size_t max_bytes = 4096) const;

 private:
  explicit ServerProcess(ServerProcessOptions options);
  absl::Status Launch();

  ServerProcessOptions options_;
  std::unique_ptr<TempDir> owned_dir_;  // data and logs, if not given
  std::string data_dir_;
  std::string log_path_;
  std::string address_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int runs_ = 0;
};

struct CommandResult {
  int exit_code = -1;  // 0..255, or 128+signal if a signal ended it
  std::string out;     // everything written to stdout
  std::string err;     // everything written to stderr
};

// Runs `argv` (argv[0] a path) with `stdin_data` on its stdin, and waits for it to exit.
// Errors: DEADLINE_EXCEEDED if it ran longer than `timeout` (it is killed); INTERNAL for
// fork/exec failures.
absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv,
                                         absl::string_view stdin_data = "",
                                         absl::Duration timeout = absl::Seconds(60));

}  // namespace evlog::testing
