#include "tests/testing/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

#ifndef EVLOG_BIN_DIR
#error "EVLOG_BIN_DIR must be defined (the build's binary directory)"
#endif

namespace evlog::testing {
namespace {

constexpr absl::string_view kReadyPrefix = "evlogd listening on ";

// Exit status as documented: 0..255, or 128+signal.
int DecodeWaitStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// Waits for `pid` up to `deadline`; the decoded status, or nullopt-like -2 if still running.
int WaitUntil(pid_t pid, absl::Time deadline) {
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return DecodeWaitStatus(status);
    if (r < 0 && errno != EINTR) return -1;  // not our child any more
    if (absl::Now() >= deadline) return -2;
    absl::SleepFor(absl::Milliseconds(5));
  }
}

int RemainingMs(absl::Time deadline) {
  const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms < 0 ? 0 : static_cast<int>(ms > 1000 ? 1000 : ms);
}

// argv for execv: pointers into `args`, null-terminated.
std::vector<char*> ExecArgv(std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return argv;
}

// In the child after fork: only async-signal-safe calls until exec.
[[noreturn]] void ExecChild(char** argv, int stdin_fd, int stdout_fd, int stderr_fd, pid_t parent) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
  if (dup2(stdin_fd, 0) < 0 || dup2(stdout_fd, 1) < 0 || dup2(stderr_fd, 2) < 0) _exit(127);
  execv(argv[0], argv);
  _exit(127);
}

}  // namespace

TempDir::TempDir(absl::string_view prefix) {
  const char* tmp = getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/", prefix, "-XXXXXX");
  if (mkdtemp(pattern.data()) == nullptr) {
    std::fprintf(stderr, "mkdtemp(%s) failed: %s\n", pattern.c_str(), std::strerror(errno));
    std::abort();
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string BinaryPath(absl::string_view name) { return absl::StrCat(EVLOG_BIN_DIR, "/", name); }

ServerProcess::ServerProcess(ServerProcessOptions options)
    : options_(std::move(options)), owned_dir_(std::make_unique<TempDir>("evlogd")) {
  data_dir_ = options_.data_dir.empty() ? owned_dir_->path() + "/data" : options_.data_dir;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(ServerProcessOptions options) {
  std::unique_ptr<ServerProcess> server(new ServerProcess(std::move(options)));
  if (absl::Status s = server->Launch(); !s.ok()) return s;
  return server;
}

ServerProcess::~ServerProcess() { Kill(); }

absl::Status ServerProcess::Launch() {
  ++runs_;
  log_path_ = absl::StrCat(owned_dir_->path(), "/evlogd.", runs_, ".log");
  std::vector<std::string> args = {options_.binary, "--listen=127.0.0.1:0",
                                   "--data-dir=" + data_dir_};
  args.insert(args.end(), options_.extra_flags.begin(), options_.extra_flags.end());
  std::vector<char*> argv = ExecArgv(args);

  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return absl::InternalError("pipe2 failed");
  const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (log_fd < 0 || null_fd < 0) {
    close(out[0]);
    close(out[1]);
    if (log_fd >= 0) close(log_fd);
    if (null_fd >= 0) close(null_fd);
    return absl::InternalError(absl::StrCat("cannot open ", log_path_, " or /dev/null"));
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) ExecChild(argv.data(), null_fd, out[1], log_fd, parent);
  close(out[1]);
  close(log_fd);
  close(null_fd);
  if (pid < 0) {
    close(out[0]);
    return absl::InternalError(absl::StrCat("fork failed: ", std::strerror(errno)));
  }
  pid_ = pid;
  stdout_fd_ = out[0];

  // Read the ready line.
  const absl::Time deadline = absl::Now() + options_.start_timeout;
  std::string line;
  while (line.find('\n') == std::string::npos) {
    if (absl::Now() >= deadline) {
      Kill();
      return absl::DeadlineExceededError(absl::StrCat("evlogd printed no ready line within ",
                                                      absl::FormatDuration(options_.start_timeout),
                                                      "; log:\n", LogTail()));
    }
    pollfd p = {stdout_fd_, POLLIN, 0};
    const int n = poll(&p, 1, RemainingMs(deadline));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    char buffer[256];
    const ssize_t got = read(stdout_fd_, buffer, sizeof(buffer));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {  // stdout closed: the process exited
      const int status = WaitUntil(pid_, absl::Now() + absl::Seconds(5));
      Kill();
      return absl::UnavailableError(absl::StrCat("evlogd exited with status ", status,
                                                 " before it was ready; log:\n", LogTail()));
    }
    line.append(buffer, static_cast<size_t>(got));
  }
  line.resize(line.find('\n'));
  if (!absl::StartsWith(line, kReadyPrefix)) {
    Kill();
    return absl::InternalError(
        absl::StrCat("unexpected first line from evlogd: \"", line, "\"; log:\n", LogTail()));
  }
  address_ = line.substr(kReadyPrefix.size());
  return absl::OkStatus();
}

absl::StatusOr<int> ServerProcess::WaitForExit(absl::Duration timeout) {
  if (!running()) return absl::FailedPreconditionError("evlogd is not running");
  const int status = WaitUntil(pid_, absl::Now() + timeout);
  if (status == -2) {
    return absl::DeadlineExceededError(
        absl::StrCat("evlogd (pid ", pid_, ") still runs after ", absl::FormatDuration(timeout)));
  }
  pid_ = -1;
  close(stdout_fd_);
  stdout_fd_ = -1;
  return status;
}

absl::StatusOr<int> ServerProcess::Terminate(absl::Duration timeout) {
  if (!running()) return absl::FailedPreconditionError("evlogd is not running");
  kill(pid_, SIGTERM);
  absl::StatusOr<int> status = WaitForExit(timeout);
  if (!status.ok() && status.status().code() == absl::StatusCode::kDeadlineExceeded) {
    Kill();
    return absl::DeadlineExceededError(
        absl::StrCat(status.status().message(), " after SIGTERM; killed. Log:\n", LogTail()));
  }
  return status;
}

void ServerProcess::Kill() {
  if (!running()) return;
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  close(stdout_fd_);
  stdout_fd_ = -1;
}

absl::Status ServerProcess::Restart() {
  if (running()) return absl::FailedPreconditionError("Restart: evlogd is still running");
  return Launch();
}

std::string ServerProcess::LogTail(size_t max_bytes) const {
  std::ifstream in(log_path_, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string log = buffer.str();
  return log.size() <= max_bytes ? log : log.substr(log.size() - max_bytes);
}

absl::StatusOr<CommandResult> RunCommand(const std::vector<std::string>& argv_in,
                                         absl::string_view stdin_data, absl::Duration timeout) {
  signal(SIGPIPE, SIG_IGN);  // a child that stops reading stdin must not kill the test
  std::vector<std::string> args = argv_in;
  std::vector<char*> argv = ExecArgv(args);
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    return absl::InternalError("pipe2 failed");
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) ExecChild(argv.data(), in[0], out[1], err[1], parent);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    close(in[1]);
    close(out[0]);
    close(err[0]);
    return absl::InternalError(absl::StrCat("fork failed: ", std::strerror(errno)));
  }
  fcntl(in[1], F_SETFL, O_NONBLOCK);
  CommandResult result;
  int stdin_fd = in[1];
  size_t written = 0;
  if (stdin_data.empty()) {
    close(stdin_fd);
    stdin_fd = -1;
  }
  int out_fd = out[0], err_fd = err[0];
  const absl::Time deadline = absl::Now() + timeout;
  while (out_fd >= 0 || err_fd >= 0) {
    if (absl::Now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      for (int fd : {stdin_fd, out_fd, err_fd}) {
        if (fd >= 0) close(fd);
      }
      return absl::DeadlineExceededError(absl::StrCat(argv_in[0], " ran longer than ",
                                                      absl::FormatDuration(timeout), "; stderr:\n",
                                                      result.err));
    }
    pollfd fds[3];
    int n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out_fd >= 0) out_i = n, fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) err_i = n, fds[n++] = {err_fd, POLLIN, 0};
    if (stdin_fd >= 0) in_i = n, fds[n++] = {stdin_fd, POLLOUT, 0};
    if (poll(fds, n, RemainingMs(deadline)) <= 0) continue;
    char buffer[65536];
    auto drain = [&](int i, int& fd, std::string& sink) {
      if (i < 0 || fds[i].revents == 0) return;
      const ssize_t got = read(fd, buffer, sizeof(buffer));
      if (got > 0) {
        sink.append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || errno != EINTR) {
        close(fd);
        fd = -1;
      }
    };
    drain(out_i, out_fd, result.out);
    drain(err_i, err_fd, result.err);
    if (in_i >= 0 && fds[in_i].revents != 0) {
      const ssize_t put = write(stdin_fd, stdin_data.data() + written, stdin_data.size() - written);
      if (put > 0) written += static_cast<size_t>(put);
      if ((put < 0 && errno != EAGAIN && errno != EINTR) || written == stdin_data.size()) {
        close(stdin_fd);
        stdin_fd = -1;
      }
    }
  }
  if (stdin_fd >= 0) close(stdin_fd);
  result.exit_code = WaitUntil(pid, deadline);
  if (result.exit_code == -2) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return absl::DeadlineExceededError(absl::StrCat(
        argv_in[0], " closed its output but ran longer than ", absl::FormatDuration(timeout)));
  }
  return result;
}

}  // namespace evlog::testing
