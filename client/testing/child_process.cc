#include "client/testing/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace evlog::testing {

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Start(
    const std::vector<std::string>& argv) {
  return Launch(argv, /*stdin_pipe=*/false);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::StartWithStdin(
    const std::vector<std::string>& argv) {
  // A write to a pipe whose reader exited raises SIGPIPE, which would end the whole test
  // binary; ignored, the write fails with EPIPE and WriteStdin reports false.
  signal(SIGPIPE, SIG_IGN);
  return Launch(argv, /*stdin_pipe=*/true);
}

absl::StatusOr<std::unique_ptr<ChildProcess>> ChildProcess::Launch(
    const std::vector<std::string>& argv, bool stdin_pipe) {
  std::vector<std::string> args = argv;
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    return absl::InternalError("pipe2 failed");
  }
  // Both ends close-on-exec, so no other child inherits the write end (which would keep this
  // child from ever seeing end of file); dup2 below clears the flag on the child's fd 0.
  int in[2] = {-1, -1};
  if (stdin_pipe && pipe2(in, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    close(err[0]);
    close(err[1]);
    return absl::InternalError("pipe2 failed");
  }
  const int null_fd = stdin_pipe ? in[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    if (dup2(null_fd, 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) _exit(127);
    execv(cargs[0], cargs.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  if (null_fd >= 0) close(null_fd);
  if (pid < 0) {
    close(out[0]);
    close(err[0]);
    if (in[1] >= 0) close(in[1]);
    return absl::InternalError(absl::StrCat("fork failed: ", std::strerror(errno)));
  }
  std::unique_ptr<ChildProcess> child(new ChildProcess());
  child->pid_ = pid;
  child->stdin_fd_ = in[1];
  ChildProcess* raw = child.get();
  const int out_fd = out[0], err_fd = err[0];
  child->out_reader_ = std::thread([raw, out_fd] { raw->ReadStdout(out_fd); });
  child->err_reader_ = std::thread([raw, err_fd] { raw->ReadStderr(err_fd); });
  return child;
}

ChildProcess::~ChildProcess() {
  CloseStdin();
  bool reaped;
  {
    absl::MutexLock l(&mu_);
    reaped = reaped_;
  }
  if (!reaped && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  // The pipes close when the child (and anything it started) exits.
  if (out_reader_.joinable()) out_reader_.join();
  if (err_reader_.joinable()) err_reader_.join();
}

bool ChildProcess::WriteStdin(std::string_view data) {
  if (stdin_fd_ < 0) return false;
  while (!data.empty()) {
    const ssize_t n = write(stdin_fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // EPIPE: the child closed its stdin or exited
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

void ChildProcess::CloseStdin() {
  if (stdin_fd_ >= 0) close(stdin_fd_);
  stdin_fd_ = -1;
}

void ChildProcess::ReadStdout(int fd) {
  char buf[65536];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    absl::MutexLock l(&mu_);
    partial_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      lines_.push_back(partial_.substr(start, nl - start));
    }
    partial_.erase(0, start);
  }
  close(fd);
}

void ChildProcess::ReadStderr(int fd) {
  char buf[4096];
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    absl::MutexLock l(&mu_);
    err_.append(buf, static_cast<size_t>(n));
  }
  close(fd);
}

std::vector<std::string> ChildProcess::Lines() {
  absl::MutexLock l(&mu_);
  return lines_;
}

std::string ChildProcess::Stderr() {
  absl::MutexLock l(&mu_);
  return err_;
}

bool ChildProcess::WaitForLines(const std::function<bool(const std::vector<std::string>&)>& done,
                                absl::Time deadline) {
  absl::MutexLock l(&mu_);
  size_t seen = static_cast<size_t>(-1);
  while (true) {
    if (seen != lines_.size()) {
      seen = lines_.size();
      if (done(lines_)) return true;
    }
    if (absl::Now() >= deadline) return false;
    // Wakes on new lines; the timeout only bounds the wait.
    auto grown = [this, seen]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return lines_.size() != seen; };
    mu_.AwaitWithDeadline(absl::Condition(&grown),
                          std::min(deadline, absl::Now() + absl::Milliseconds(200)));
  }
}

void ChildProcess::Signal(int sig) {
  absl::MutexLock l(&mu_);
  if (!reaped_ && pid_ > 0) kill(pid_, sig);
}

int ChildProcess::Wait(absl::Time deadline) {
  while (true) {
    {
      absl::MutexLock l(&mu_);
      if (reaped_) return exit_status_;
      int status = 0;
      const pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        reaped_ = true;
        exit_status_ = WIFEXITED(status)     ? WEXITSTATUS(status)
                       : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                             : -1;
        return exit_status_;
      }
    }
    if (absl::Now() >= deadline) return -1;
    absl::SleepFor(absl::Milliseconds(5));  // polling the exit, not a timing assumption
  }
}

}  // namespace evlog::testing
