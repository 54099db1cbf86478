// ChildProcess: a program run by a test, whose stdout lines and stderr are collected in the
// background while it runs (so a chatty child never blocks on a full pipe), with waits that
// have deadlines and signals sent by pid.
//
// Example:
//   auto child = ChildProcess::Start({path, "--group=g"});
//   ASSERT_TRUE(child.ok()) << child.status();
//   ASSERT_TRUE((*child)->WaitForLines(
//       [](const std::vector<std::string>& lines) { return lines.size() >= 3; },
//       absl::Now() + absl::Seconds(10)));
//   (*child)->Signal(SIGTERM);
//   EXPECT_EQ((*child)->Wait(absl::Now() + absl::Seconds(10)), 0);
//
// The child gets /dev/null as stdin (or, with StartWithStdin, a pipe the test writes) and is
// SIGKILLed if the thread that started it exits (PR_SET_PDEATHSIG): start children from the
// test's main thread.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace evlog::testing {

class ChildProcess {
 public:
  // Runs argv[0] (a path) with argv. Errors: INTERNAL if it cannot be started.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Start(const std::vector<std::string>& argv);

  // Like Start, but the child's stdin is a pipe fed by WriteStdin and closed by CloseStdin (the
  // child then reads end of file). Ignores SIGPIPE in this process from then on, so writing to
  // a child that exited fails with false instead of killing the test.
  static absl::StatusOr<std::unique_ptr<ChildProcess>> StartWithStdin(
      const std::vector<std::string>& argv);

  // Writes all of `data` to the child's stdin, blocking while the pipe is full (the child reads
  // slower than the test writes). Returns false, having written a prefix, if the child closed
  // its stdin or exited, or if there is no stdin pipe (Start, or after CloseStdin). One
  // writing thread at a time; CloseStdin must not run concurrently with it.
  bool WriteStdin(std::string_view data);

  // Closes the stdin pipe (idempotent); the child sees end of file once it read what was
  // written. The destructor closes it too.
  void CloseStdin();

  // SIGKILLs the child if it still runs, reaps it and stops the readers.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  // The complete stdout lines so far (without newlines), and everything written to stderr.
  std::vector<std::string> Lines();
  std::string Stderr();

  // Waits until `done(lines)` holds or `deadline` passes; returns whether it held.
  bool WaitForLines(const std::function<bool(const std::vector<std::string>&)>& done,
                    absl::Time deadline);

  void Signal(int sig);

  // Waits for the exit until `deadline`: the exit status, 128+signal, or -1 if it still runs.
  int Wait(absl::Time deadline);

 private:
  ChildProcess() = default;
  static absl::StatusOr<std::unique_ptr<ChildProcess>> Launch(const std::vector<std::string>& argv,
                                                              bool stdin_pipe);
  void ReadStdout(int fd);
  void ReadStderr(int fd);

  pid_t pid_ = -1;
  int stdin_fd_ = -1;     // the write end of the child's stdin (StartWithStdin), or -1
  int exit_status_ = -1;  // once reaped
  std::thread out_reader_;
  std::thread err_reader_;
  absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  std::string partial_ ABSL_GUARDED_BY(mu_);
  std::string err_ ABSL_GUARDED_BY(mu_);
  bool reaped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace evlog::testing
